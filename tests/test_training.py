"""End-to-end training, evaluation and prediction on generated pickles, through the real CLI."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import torch

from actionlstm.checkpoint import load_checkpoint
from actionlstm.dataset import load_dataset
from actionlstm.evaluate import predict_clip
from actionlstm.inference import predict_clips
from actionlstm.synthetic import write_sample_pickle
from actionlstm.train import resume_path
from tests.conftest import ROOT, run_cli


def test_model_learns_and_evaluate_agrees_with_the_model(sample_pickle, trained_checkpoint, tmp_path):
    result = run_cli("evaluate", "--data", sample_pickle, "--checkpoint", trained_checkpoint, "--json", "--report-dir", tmp_path, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] > 0
    assert metrics["top1"] > 0.6, metrics  # 4 classes: chance is 0.25
    assert metrics["top5"] == 1.0  # only 4 classes exist

    dataset = load_dataset(sample_pickle)
    clf = load_checkpoint(trained_checkpoint)
    test = dataset.split_indices("test1")
    probs = predict_clips(clf.model, clf.preprocess, dataset, test, torch.device("cpu"))
    assert np.isclose(metrics["top1"], float((probs.argmax(-1) == dataset.labels[test]).mean()))

    assert (tmp_path / f"{trained_checkpoint.stem}.test1.confusion.png").stat().st_size > 1000
    rows = (tmp_path / f"{trained_checkpoint.stem}.test1.per_class.csv").read_text().splitlines()
    assert len(rows) == 1 + 4


def test_predict_reports_the_models_top5(sample_pickle, trained_checkpoint):
    result = run_cli("predict", "--data", sample_pickle, "--checkpoint", trained_checkpoint, "--idx", "5", "--json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)

    dataset = load_dataset(sample_pickle)
    index = int(dataset.split_indices("test1")[5])
    expected = predict_clip(load_checkpoint(trained_checkpoint), dataset, index, torch.device("cpu"))
    assert printed["frame_dir"] == expected["frame_dir"] == str(dataset.frame_dirs[index])
    assert printed["label"] == expected["label"]
    assert [t["label"] for t in printed["top5"]] == [t["label"] for t in expected["top5"]]
    assert np.isclose(sum(t["prob"] for t in printed["top5"]), 1.0, atol=1e-4)  # 4 classes: the top 5 hold them all

    by_name = run_cli("predict", "--data", sample_pickle, "--checkpoint", trained_checkpoint, "--frame-dir", printed["frame_dir"], "--json", "--device", "cpu")
    assert json.loads(by_name.stdout)["top5"] == printed["top5"]


def test_checkpoint_is_self_contained_and_safe_to_load(trained_checkpoint):
    payload = torch.load(trained_checkpoint, weights_only=True)
    assert payload["model_config"]["hidden"] == 128 and payload["model_config"]["layers"] == 2
    assert payload["model_config"]["num_classes"] == len(payload["class_names"]) == 4
    assert payload["preprocess"]["window"] == 120
    assert len(payload["meta"]["history"]) == 12
    assert trained_checkpoint.with_suffix(".curves.png").stat().st_size > 1000
    assert not resume_path(trained_checkpoint).exists()


def test_interrupted_training_resumes(tmp_path):
    data = tmp_path / "small.pkl"
    write_sample_pickle(data, num_classes=3, clips_per_class=12, frames=(30, 60), seed=1)
    out = tmp_path / "run.pth"
    # 36 clips: each epoch still draws 512 windows (64 steps), so 4 epochs leave time to interrupt.
    args = ["train", "--data", data, "--epochs", "4", "--batch-size", "8", "--out", out, "--device", "cpu"]
    command = [sys.executable, "-c", "from actionlstm.cli import main; main()", *map(str, args)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = resume_path(out)
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode != 0, "the run finished before it could be interrupted"
    assert not out.exists()  # an interrupted run writes no checkpoint
    done = torch.load(state, weights_only=True)["epoch"]
    assert 1 <= done < 4

    other = run_cli(*args, "--resume", "--seed", "5")  # another hold-out: not the interrupted run
    assert other.returncode == 1 and "start afresh" in other.stderr and "Traceback" not in other.stderr

    result = run_cli(*args, "--resume")
    assert result.returncode == 0, result.stderr
    history = torch.load(out, weights_only=True)["meta"]["history"]
    assert [h["epoch"] for h in history] == list(range(1, 5))
    assert not state.exists()
