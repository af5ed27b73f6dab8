"""Bad input through the real `actionlstm` command: every user error is one `error: ...` line on
stderr, exit code 1, never a traceback; odd but valid data (NaN keypoints) trains; a failed run
never touches an existing checkpoint. Commands run in this process (`run_cli`), those that are
interrupted by a signal in a process of their own."""

import json
import math
import os
import pickle
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from actionlstm.pickle_io import dump_pickle_like_mmcv
from actionlstm.synthetic import make_sample_annotations, write_sample_pickle
from tests.helpers import CLI, assert_user_error, one_thread, run_cli

TINY = dict(clips_per_class=6, frames=(20, 40))
FAST = ("--epochs", "1", "--batch-size", "32", "--members", "1", "--device", "cpu")  # bad input, not the recipe: one member is enough
pytestmark = pytest.mark.usefixtures("single_thread")


def write_data(path: Path, mutate=None, num_classes=3, seed=0) -> Path:
    data, _ = make_sample_annotations(num_classes=num_classes, seed=seed, **TINY)
    if mutate is not None:
        data = mutate(data)
    dump_pickle_like_mmcv(data, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 3-class and a 4-class sample pickle, and a checkpoint trained (1 epoch) on the 3-class one."""
    root = tmp_path_factory.mktemp("tiny")
    with pytest.MonkeyPatch.context() as mp, one_thread():
        mp.setenv("ACTIONLSTM_CACHE_DIR", str(root / "cache"))
        s3 = root / "s3.pkl"
        s4 = root / "s4.pkl"
        write_sample_pickle(s3, num_classes=3, seed=0, **TINY)
        write_sample_pickle(s4, num_classes=4, seed=1, **TINY)
        ckpt = root / "ck" / "tiny.pth"
        proc = run_cli("train", "--data", s3, "--out", ckpt, *FAST, cwd=root)
        assert proc.returncode == 0, proc.stderr
        assert ckpt.is_file()
    return {"root": root, "s3": s3, "s4": s4, "ckpt": ckpt}


# --- data files ---------------------------------------------------------------------------------------


def test_missing_data_file_train(tmp_path):
    proc = run_cli("train", "--data", tmp_path / "nope.pkl", "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc, "nope.pkl")


def test_missing_data_file_evaluate(tmp_path, tiny):
    proc = run_cli("evaluate", "--data", tmp_path / "nope.pkl", "--checkpoint", tiny["ckpt"], "--device", "cpu", cwd=tmp_path)
    assert_user_error(proc, "nope.pkl")


def test_data_is_text(tmp_path):
    data = tmp_path / "notes.pkl"
    data.write_text("these are not the skeletons you are looking for\n" * 20)
    proc = run_cli("train", "--data", data, "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc)


def test_data_is_empty(tmp_path):
    data = tmp_path / "empty.pkl"
    data.write_bytes(b"")
    proc = run_cli("train", "--data", data, "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc)


def test_truncated_pickle(tmp_path):
    full = write_data(tmp_path / "full.pkl")
    raw = full.read_bytes()
    data = tmp_path / "half.pkl"
    data.write_bytes(raw[: len(raw) // 2])
    proc = run_cli("train", "--data", data, "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc)


def test_top_level_list(tmp_path):
    data = tmp_path / "list.pkl"
    dump_pickle_like_mmcv([{"frame_dir": "a", "label": 0}], data)
    proc = run_cli("train", "--data", data, "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc, "list")


@pytest.mark.parametrize("key", ["split", "annotations"])
def test_missing_top_level_key(tmp_path, key):
    def drop(data):
        del data[key]
        return data

    data = write_data(tmp_path / "d.pkl", drop)
    proc = run_cli("train", "--data", data, "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc, key)


@pytest.mark.parametrize("option", [("--split", "7"), ("--train-split", "nope")])
def test_unknown_split(tmp_path, tiny, option):
    proc = run_cli("train", "--data", tiny["s3"], "--out", tmp_path / "m.pth", *option, *FAST, cwd=tmp_path)
    assert_user_error(proc, "train7" if option[1] == "7" else "nope")
    assert not (tmp_path / "m.pth").exists()


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda m, t: (m, t, 17), id="rank3"),
        pytest.param(lambda m, t: (m, t, 18, 2), id="18-joints"),
    ],
)
def test_bad_keypoint_shape(tmp_path, shape):
    def damage(data):
        ann = data["annotations"][4]
        m, t = ann["keypoint"].shape[:2]
        ann["keypoint"] = np.ones(shape(m, t), np.float16)
        return data

    data = write_data(tmp_path / "d.pkl", damage)
    proc = run_cli("train", "--data", data, "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc, "keypoint")


def test_label_out_of_range_for_labels_file(tmp_path, tiny):
    labels = tmp_path / "two.txt"
    labels.write_text("wave\nclap\n")
    proc = run_cli("train", "--data", tiny["s3"], "--labels", labels, "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc, "label 2")
    assert not (tmp_path / "m.pth").exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("img_shape", None),
        ("total_frames", None),
        ("total_frames", "many"),
        ("keypoint", [[1.0, 2.0], [3.0]]),  # ragged, not an array
    ],
)
def test_malformed_annotation_field(tmp_path, field, value):
    def damage(data):
        data["annotations"][2][field] = value
        return data

    data = write_data(tmp_path / "d.pkl", damage)
    proc = run_cli("train", "--data", data, "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc)


# --- checkpoints ------------------------------------------------------------------------------------


def test_evaluate_checkpoint_class_count_mismatch(tmp_path, tiny):
    proc = run_cli("evaluate", "--data", tiny["s4"], "--checkpoint", tiny["ckpt"], "--device", "cpu", cwd=tmp_path)
    assert_user_error(proc, "3", "4")


def _text_file(path: Path) -> None:
    path.write_text("not a checkpoint\n")


def _plain_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"format": "actionlstm-checkpoint", "version": 1}, protocol=2))


def _skeleton_pickle(path: Path) -> None:
    write_sample_pickle(path, num_classes=3, seed=0, clips_per_class=3, frames=(20, 25))


def _torch_not_checkpoint(path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)


@pytest.mark.parametrize("make", [_text_file, _plain_pickle, _skeleton_pickle, _torch_not_checkpoint])
def test_checkpoint_that_is_not_a_checkpoint(tmp_path, tiny, make):
    ckpt = tmp_path / "fake.pth"
    make(ckpt)
    proc = run_cli("evaluate", "--data", tiny["s3"], "--checkpoint", ckpt, "--device", "cpu", cwd=tmp_path)
    assert_user_error(proc, "fake.pth")


@pytest.mark.parametrize("idx", ["999", "-1"])
def test_predict_idx_out_of_range(tmp_path, tiny, idx):
    proc = run_cli("predict", "--data", tiny["s3"], "--checkpoint", tiny["ckpt"], "--idx", idx, "--device", "cpu", cwd=tmp_path)
    assert_user_error(proc, "--idx")


# --- NaN keypoints are data, not errors -------------------------------------------------------------


def _with_nans(data):
    anns = data["annotations"]
    nan = np.float16("nan")
    for i, ann in enumerate(anns):
        kp = ann["keypoint"]
        if kp.shape[0] == 0:
            continue
        if i % 6 == 0:  # every frame of every person
            kp[...] = nan
        elif i % 6 == 1:  # the second half of the clip
            kp[:, kp.shape[1] // 2 :] = nan
        elif i % 6 == 2:  # scattered joints, only x
            kp[:, ::3, ::4, 0] = nan
    return data


def test_nan_keypoints_train_and_predict(tmp_path):
    data = write_data(tmp_path / "nan.pkl", _with_nans)
    all_nan_clip = make_sample_annotations(num_classes=3, seed=0, **TINY)[0]["annotations"][0]["frame_dir"]
    ckpt = tmp_path / "ck" / "nan.pth"
    proc = run_cli(
        "train", "--data", data, "--out", ckpt, "--epochs", "2", "--batch-size", "32", "--members", "1", "--device", "cpu", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr

    payload = torch.load(ckpt, map_location="cpu", weights_only=True)
    history = payload["meta"]["history"]
    assert len(history) == 2
    for epoch in history:
        assert math.isfinite(epoch["loss"]), history
        assert math.isfinite(epoch["train_top1"]), history
    for name, tensor in payload["state_dict"].items():
        assert torch.isfinite(tensor).all(), name

    proc = run_cli("predict", "--data", data, "--checkpoint", ckpt, "--frame-dir", all_nan_clip, "--json", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    probs = [item["prob"] for item in result["top5"]]
    assert all(math.isfinite(p) for p in probs), result
    assert abs(sum(probs) - 1.0) < 1e-3, result  # 3 classes: the top 5 is all of them


# --- failed runs leave an existing checkpoint alone ---------------------------------------------------

KNOWN = b"precious checkpoint bytes \x00\x01\x02" * 100


def test_failed_train_keeps_existing_checkpoint(tmp_path, tiny):
    folder = tmp_path / "ck"
    folder.mkdir()
    out = folder / "model.pth"
    out.write_bytes(KNOWN)
    labels = tmp_path / "two.txt"
    labels.write_text("wave\nclap\n")
    proc = run_cli("train", "--data", tiny["s3"], "--labels", labels, "--out", out, "--overwrite", *FAST, cwd=tmp_path)
    assert_user_error(proc)
    assert out.read_bytes() == KNOWN
    assert sorted(p.name for p in folder.iterdir()) == ["model.pth"]

    # Bad data (not just bad labels) fails the same way.
    bad = write_data(tmp_path / "bad.pkl", lambda d: {"annotations": d["annotations"]})
    proc = run_cli("train", "--data", bad, "--out", out, "--overwrite", *FAST, cwd=tmp_path)
    assert_user_error(proc)
    assert out.read_bytes() == KNOWN
    assert sorted(p.name for p in folder.iterdir()) == ["model.pth"]


def test_train_never_replaces_an_existing_checkpoint_unasked(tmp_path, tiny):
    out = tmp_path / "model.pth"
    out.write_bytes(KNOWN)
    proc = run_cli("train", "--data", tiny["s3"], "--out", out, *FAST, cwd=tmp_path)
    assert_user_error(proc, "already exists", "--overwrite")
    assert out.read_bytes() == KNOWN
    proc = run_cli("train", "--data", tiny["s3"], "--out", out, "--overwrite", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() != KNOWN and out.read_bytes()[:2] == b"PK"  # a torch zip checkpoint now


@pytest.mark.parametrize("stop, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_interrupted_train_keeps_existing_checkpoint(tmp_path, tiny, stop, code, name):
    folder = tmp_path / "ck"
    folder.mkdir()
    out = folder / "model.pth"
    out.write_bytes(KNOWN)
    proc = subprocess.Popen(
        [
            *CLI,
            "train",
            "--data",
            str(tiny["s3"]),
            "--out",
            str(out),
            "--overwrite",
            "--epochs",
            "1000",
            "--batch-size",
            "8",
            "--device",
            "cpu",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ),
    )
    started = threading.Event()
    chunks: list[str] = []

    def read_stderr():
        for line in proc.stderr:
            chunks.append(line)
            if "training on" in line:
                started.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert started.wait(60), "training never started: " + "".join(chunks)
        time.sleep(1.5)  # well into training; 1000 epochs take far longer
        assert proc.poll() is None, "".join(chunks)
        proc.send_signal(stop)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    stderr = "".join(chunks)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and stderr.rstrip().endswith(f"stopped by {name}")
    assert out.read_bytes() == KNOWN
    left = sorted(p.name for p in folder.iterdir())
    # The resume state is kept on purpose (for --resume); nothing else may be.
    assert set(left) <= {"model.pth", "model.pth.resume.pth"}, left
    hint = "run the same command with --resume" if "model.pth.resume.pth" in left else "before its first epoch ended"
    assert hint in stderr, stderr


# --- outputs ------------------------------------------------------------------------------------------


def test_out_that_is_a_folder_is_refused_before_training(tmp_path, tiny):
    folder = tmp_path / "models"
    folder.mkdir()
    proc = run_cli("train", "--data", tiny["s3"], "--out", folder, *FAST, cwd=tmp_path)
    assert_user_error(proc, "is a folder")
    assert list(folder.iterdir()) == []


def test_split_that_is_not_a_list(tmp_path):
    def damage(data):
        data["split"]["train1"] = 5
        return data

    proc = run_cli("train", "--data", write_data(tmp_path / "d.pkl", damage), "--out", tmp_path / "m.pth", *FAST, cwd=tmp_path)
    assert_user_error(proc, "train1")


def test_unknown_device(tmp_path, tiny):
    proc = run_cli("predict", "--data", tiny["s3"], "--checkpoint", tiny["ckpt"], "--idx", "0", "--device", "meta", cwd=tmp_path)
    assert_user_error(proc, "unknown device")
