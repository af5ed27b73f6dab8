"""The pose stage on a real frame: untracked detections of the three people, exported CPU backends
agree with PyTorch, exports are cached."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from actionlstm.errors import UserError
from pipeline.pose import choose_backend, exported_model, resolve_pose_model
from tests.helpers import shared_video

pytestmark = pytest.mark.video

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    capture = cv2.VideoCapture(str(shared_video("exercise_3people.avi")))
    for _ in range(20):
        ok, image = capture.read()
    capture.release()
    assert ok
    return image


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Eleven consecutive real frames with three people."""
    capture = cv2.VideoCapture(str(shared_video("exercise_3people.avi")))
    images = [capture.read()[1] for _ in range(11)]
    capture.release()
    assert all(image is not None for image in images)
    return images


def _people(detections) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints and scores of the confident detections (those a tracker starts tracks from), left to right."""
    confident = np.flatnonzero(detections.confidences >= 0.5)
    order = confident[np.argsort(detections.boxes[confident, 0])]
    return detections.keypoints[order], detections.scores[order]


@pytest.fixture(scope="module")
def torch_people(frame, pose_stage):
    detections = pose_stage("torch")(frame)
    assert detections.boxes.shape[1:] == (4,) and detections.keypoints.shape[1:] == (17, 2) and detections.scores.shape[1:] == (17,)
    assert len(detections) == len(detections.confidences) == len(detections.keypoints)
    people = _people(detections)
    assert len(people[0]) == 3
    return people


@pytest.mark.parametrize("backend", ["openvino", "onnx"])
def test_exported_backend_finds_the_same_skeletons(frame, torch_people, backend, pose_stage):
    estimator = pose_stage(backend)
    assert estimator.backend == backend
    got_kp, got_sc = _people(estimator(frame))
    assert len(got_kp) == 3
    expected_kp, expected_sc = torch_people
    visible = (expected_sc > 0.5) & (got_sc > 0.5)
    assert visible.sum() > 30
    distance = np.linalg.norm(expected_kp - got_kp, axis=-1)[visible]
    assert np.median(distance) < 3.0, np.median(distance)  # pixels, in a 384x288 frame


@pytest.mark.parametrize("backend", ["openvino", "onnx"])
def test_a_batch_gives_the_same_bits_as_one_frame_at_a_time(frames, backend, pose_stage):
    """What lets extract batch a file's frames without changing its pickle: OpenVINO's concurrent
    requests and ONNX's split batch return exactly what one call per frame returns."""
    estimator = pose_stage(backend)
    assert estimator.file_batch > 1
    alone = [estimator(image) for image in frames]
    together = estimator.batch(frames[:8]) + estimator.batch(frames[8:10]) + estimator.batch(frames[10:])
    assert len(together) == len(frames) and sum(len(d) for d in alone) >= 3 * len(frames)
    for a, b in zip(alone, together):
        for field in ("boxes", "confidences", "keypoints", "scores"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field


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
