"""End-to-end training, evaluation and prediction on generated pickles, through the real CLI."""

import csv
import json
import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from actionlstm.checkpoint import load_checkpoint
from actionlstm.dataset import load_dataset
from actionlstm.epochs import epoch_windows
from actionlstm.evaluate import predict_clip
from actionlstm.inference import predict_clips
from actionlstm.model import ActionLSTM, ModelConfig
from actionlstm.preprocess import PreprocessConfig
from actionlstm.resume import resume_path
from actionlstm.synthetic import write_sample_pickle
from actionlstm.train import TrainConfig, training_files
from tests.helpers import CLI, ROOT, TRAINED_EPOCHS, run_cli


def test_model_learns_and_evaluate_agrees_with_the_model(sample_pickle, trained_checkpoint, tmp_path):
    result = run_cli(
        "evaluate", "--data", sample_pickle, "--checkpoint", trained_checkpoint, "--json", "--report-dir", tmp_path, "--device", "cpu"
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["top1"] > 0.6, metrics  # 4 classes: chance is 0.25
    # (Top-5 of 4 classes is 1 by definition; top-k and mean class accuracy are checked against hand
    # counts on 6 classes in test_numerics.py.)

    dataset = load_dataset(sample_pickle)
    clf = load_checkpoint(trained_checkpoint)
    test = dataset.split_indices("test1")
    probs = predict_clips(clf.model, clf.preprocess, dataset, test, torch.device("cpu"))
    labels = dataset.labels[test]
    hit = probs.argmax(-1) == labels
    assert metrics["n"] == len(test)
    assert np.isclose(metrics["top1"], float(hit.mean()))

    assert (tmp_path / f"{trained_checkpoint.stem}.test1.confusion.png").stat().st_size > 1000
    with open(tmp_path / f"{trained_checkpoint.stem}.test1.per_class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["class"] for row in rows] == [f"class_{c}" for c in range(4)]  # no names file: class_N
    assert [int(row["clips"]) for row in rows] == np.bincount(labels, minlength=4).tolist()
    np.testing.assert_allclose([float(row["top1"]) for row in rows], [hit[labels == c].mean() for c in range(4)], atol=1e-4)


def test_predict_reports_the_models_top5(sample_pickle, trained_checkpoint):
    result = run_cli("predict", "--data", sample_pickle, "--checkpoint", trained_checkpoint, "--idx", "5", "--json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)

    dataset = load_dataset(sample_pickle)
    index = int(dataset.split_indices("test1")[5])
    expected = predict_clip(load_checkpoint(trained_checkpoint), dataset, index, torch.device("cpu"))
    assert printed["frame_dir"] == str(dataset.frame_dirs[index])
    assert printed["label"] == f"class_{dataset.labels[index]}"  # the clip's own label, by name
    assert [t["label"] for t in printed["top5"]] == [t["label"] for t in expected["top5"]]
    probs = [t["prob"] for t in printed["top5"]]
    np.testing.assert_allclose(probs, [t["prob"] for t in expected["top5"]], rtol=1e-5, atol=1e-6)
    assert probs == sorted(probs, reverse=True)

    by_name = run_cli(
        "predict",
        "--data",
        sample_pickle,
        "--checkpoint",
        trained_checkpoint,
        "--frame-dir",
        printed["frame_dir"],
        "--json",
        "--device",
        "cpu",
    )
    assert json.loads(by_name.stdout)["top5"] == printed["top5"]


def test_checkpoint_is_self_contained_and_safe_to_load(trained_checkpoint):
    """The file alone (read without running code) rebuilds the classifier: model settings that fit its
    weights, preprocessing that gives the model's input width, a name per class, the kept epoch."""
    payload = torch.load(trained_checkpoint, weights_only=True)
    cfg = ModelConfig(**payload["model_config"])
    recipe = TrainConfig()
    assert (cfg.members, cfg.hidden, cfg.layers, cfg.standardize) == (
        1,
        recipe.hidden,
        recipe.layers,
        recipe.standardize,
    )  # --members 1, else the recipe's
    # the inputs' statistics of the training windows, not the identity a fresh model starts with
    assert payload["state_dict"]["feature_mean"].abs().max() > 0.01 and not torch.all(payload["state_dict"]["feature_std"] == 1)
    built = {name: tuple(t.shape) for name, t in ActionLSTM(cfg).state_dict().items()}
    assert built == {name: tuple(t.shape) for name, t in payload["state_dict"].items()}
    assert PreprocessConfig(**payload["preprocess"]).num_features == cfg.num_features
    assert payload["class_names"] == [f"class_{c}" for c in range(4)]
    meta = payload["meta"]
    assert [h["epoch"] for h in meta["history"]] == list(range(1, TRAINED_EPOCHS + 1))  # trained with --epochs TRAINED_EPOCHS
    if meta["val_clips"]:  # the best validation epoch (the first of equals) is kept
        scores = [h["val_top1"] for h in meta["history"]]
        assert meta["best_epoch"] == 1 + int(np.argmax(scores))
    else:  # no validation part: the last epoch is kept
        assert meta["best_epoch"] == TRAINED_EPOCHS
    assert meta["data"] == {"file": "sample.pkl", "classes": 4, "clips": 96, "synthetic": True}  # train1 of the fixture
    assert not resume_path(trained_checkpoint).exists()


def test_training_leaves_last_weights_epoch_log_settings_and_curves_beside_the_checkpoint(sample_pickle, trained_checkpoint):
    files = training_files(trained_checkpoint)
    best = torch.load(trained_checkpoint, weights_only=True)
    last = load_checkpoint(files["last"])
    assert last.meta["weights"] == f"last (epoch {TRAINED_EPOCHS})"
    assert best["meta"]["weights"] == f"best (epoch {best['meta']['best_epoch']})"
    same = all(torch.equal(t, best["state_dict"][k]) for k, t in last.model.state_dict().items())
    assert same == (best["meta"]["best_epoch"] == TRAINED_EPOCHS)  # the last epoch's weights, which are the best only when it was kept
    with open(files["epochs_csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, TRAINED_EPOCHS + 1))
    history = best["meta"]["history"]
    assert [float(r["loss"]) for r in rows] == [h["loss"] for h in history]
    lrs = [float(r["lr"]) for r in rows]
    assert max(lrs) <= 3e-3 and lrs[-1] < lrs[0]  # the one-cycle schedule anneals
    settings = json.loads(files["settings_json"].read_text())
    assert settings["train"]["epochs"] == TRAINED_EPOCHS and settings["train"]["batch_size"] == 32
    # clips of 30-160 frames: fewer windows than the small-set minimum hold an epoch's budget of frames (in whole batches)
    dataset = load_dataset(sample_pickle, use_cache=False)
    fit = dataset.split_indices("train1")  # too few for a validation part: all of them
    cfg = TrainConfig(**settings["train"])
    windows = epoch_windows(dataset, fit, PreprocessConfig(**settings["preprocess"]), cfg)
    assert len(fit) < windows < cfg.min_epoch_windows and settings["windows_per_epoch"] == -(-windows // 32) * 32
    assert settings["data"] == best["meta"]["data"] and settings["class_names"] == best["class_names"]
    assert PreprocessConfig(**settings["preprocess"]) == load_checkpoint(trained_checkpoint).preprocess
    assert files["curves_png"].stat().st_size > 1000


@pytest.mark.slow
def test_interrupted_training_resumes(tmp_path, single_thread):
    """Ctrl-C through the real CLI in a process of its own, then --resume (in this process). That the
    resumed run ends with the weights of an uninterrupted one is checked in process (and exactly) in
    test_numerics.py."""
    data = tmp_path / "small.pkl"
    write_sample_pickle(data, num_classes=3, clips_per_class=12, frames=(50, 70), seed=1)
    out = tmp_path / "run.pth"
    # Clips of about 60 frames: an epoch draws the windows that hold 512 x 120 frames (1040 of them,
    # 65 steps of 16), so the second epoch leaves time to interrupt once the first has ended.
    # One member (not the recipe's five): that a resumed run reaches an uninterrupted one's weights with
    # several members is checked in test_numerics.py; here that --members reaches the checkpoint.
    args = ["train", "--data", data, "--epochs", "2", "--batch-size", "16", "--out", out, "--device", "cpu", "--members", "1"]
    process = subprocess.Popen([*CLI, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = resume_path(out)
    deadline = time.monotonic() + 300  # generous: other work may share the machine
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, "the run finished before it could be interrupted"
    assert stderr.decode().rstrip().endswith("stopped by Ctrl-C")
    assert state.exists(), "no epoch finished before the deadline"
    assert not out.exists()  # an interrupted run writes no checkpoint
    assert torch.load(state, weights_only=True)["epoch"] == 1

    other = run_cli(*args, "--resume", "--seed", "5")  # another hold-out: not the interrupted run
    assert other.returncode == 1 and "start afresh" in other.stderr and "Traceback" not in other.stderr
    other = run_cli(*args[:-1], "3", "--resume")  # another model: not the interrupted run
    assert other.returncode == 1 and "start afresh" in other.stderr and "Traceback" not in other.stderr

    result = run_cli(*args, "--resume")
    assert result.returncode == 0, result.stderr
    history = torch.load(out, weights_only=True)["meta"]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert load_checkpoint(out).model.cfg.members == 1  # as --members said, not the recipe's five
    assert not state.exists()
