"""The pose stage on a real frame: exported CPU backends agree with PyTorch, exports are cached."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from actionlstm.errors import UserError
from pipeline.pose import PoseEstimator, choose_backend, exported_model, resolve_pose_model
from tests.conftest import shared_video

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    capture = cv2.VideoCapture(str(shared_video("exercise_3people.avi")))
    for _ in range(20):
        ok, image = capture.read()
    capture.release()
    assert ok
    return image


def _by_position(poses):
    order = np.argsort(poses.boxes[:, 0])
    return poses.keypoints[order], poses.scores[order]


@pytest.fixture(scope="module")
def torch_poses(frame):
    estimator = PoseEstimator(None, CPU, backend="torch")
    for _ in range(3):  # ByteTrack confirms a new track on its second sighting
        poses = estimator(frame)
    assert len(poses) == 3
    return poses


@pytest.mark.parametrize("backend", ["openvino", "onnx"])
def test_exported_backend_finds_the_same_skeletons(frame, torch_poses, backend):
    estimator = PoseEstimator(None, CPU, backend=backend)
    assert estimator.backend == backend
    for _ in range(3):
        poses = estimator(frame)
    assert len(poses) == 3
    expected_kp, expected_sc = _by_position(torch_poses)
    got_kp, got_sc = _by_position(poses)
    visible = (expected_sc > 0.5) & (got_sc > 0.5)
    assert visible.sum() > 30
    distance = np.linalg.norm(expected_kp - got_kp, axis=-1)[visible]
    assert np.median(distance) < 3.0, np.median(distance)  # pixels, in a 384x288 frame


def test_export_is_made_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIONLSTM_CACHE_DIR", str(tmp_path))
    weights = resolve_pose_model(None)
    first = Path(exported_model(weights, "openvino", 320))
    assert first.is_dir() and first.name.endswith("_openvino_model") and tmp_path in first.parents
    made = first.stat().st_mtime_ns
    assert Path(exported_model(weights, "openvino", 320)) == first
    assert first.stat().st_mtime_ns == made
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temporary folder left behind


def test_auto_backend_and_its_errors():
    weights = resolve_pose_model(None)
    assert weights.endswith("yolo11n-pose.pt")  # the bundled weights, no download
    assert choose_backend("auto", CPU, weights) == "openvino"
    assert choose_backend("auto", torch.device("cuda"), weights) == "torch"
    with pytest.raises(UserError, match="runs on the CPU"):
        choose_backend("onnx", torch.device("cuda"), weights)
    with pytest.raises(UserError, match="unknown pose backend"):
        choose_backend("tensorrt", CPU, weights)
    with pytest.raises(UserError, match="pose model not found"):
        resolve_pose_model("no/such/weights.pt")
