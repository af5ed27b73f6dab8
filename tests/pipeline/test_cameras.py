"""Several cameras on a small box: INT8 pose where FP32 puts keypoints, pose only where something
moves (and still noticing whoever comes in), and sources polled so that a silent camera holds up no other."""

import time

import numpy as np
import pytest
import torch

from actionlstm.errors import UserError
from pipeline.actions import ActionRuntime
from pipeline.motion import MotionGate
from pipeline.pose import choose_backend, int8_model, resolve_pose_model
from pipeline.predictor import ActionPipeline
from pipeline.settings import PoseSettings, RecognizerSettings
from pipeline.sources import Frame, FrameSource, LiveSource, VideoFileSource
from pipeline.tracking import Tracker
from tests.helpers import read_video, shared_video, write_video

CPU = torch.device("cpu")


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def test_a_still_scene_is_posed_at_the_idle_rate_and_motion_or_a_person_at_every_frame():
    rng = np.random.default_rng(0)
    room = rng.integers(40, 200, (240, 320, 3), dtype=np.uint8)  # a textured, lit room
    gate = MotionGate(idle_fps=2.0)
    posed = [gate.needs_pose(_noisy(room, rng), k / 25, someone_in_view=False) for k in range(100)]  # 4 s at 25 fps
    assert 8 <= sum(posed) <= 9  # the first frame, then every 0.5 s: sensor noise is no motion
    assert gate.rested == 100 - sum(posed) and gate.checked == 100

    walker = room.copy()
    for k in range(100, 125):  # someone small crosses the far end of the room
        frame = walker.copy()
        x = 20 + 8 * (k - 100)
        frame[100:130, x : x + 10] = 15
        assert gate.needs_pose(_noisy(frame, rng), k / 25, someone_in_view=False)
    assert all(gate.needs_pose(_noisy(room, rng), k / 25, someone_in_view=True) for k in range(125, 150))  # still, but seen
    assert all(MotionGate(idle_fps=0).needs_pose(room, k / 25, False) for k in range(10))  # off: every frame


class _LiveFile(FrameSource):
    """Every frame of a list, as a camera that never drops one: a live source for the gate, with
    frame times from the frame rate, so a run is the same however fast the machine is."""

    is_live = True
    frame_count = None

    def __init__(self, frames: list[np.ndarray], fps: float):
        self.frames, self.fps = frames, fps
        self.size = (frames[0].shape[1], frames[0].shape[0])

    def __iter__(self):
        for k, image in enumerate(self.frames):
            yield Frame(k, k / self.fps, image)

    def close(self) -> None:
        pass


@pytest.mark.video
def test_an_idle_camera_rests_the_network_and_finds_whoever_walks_in_with_the_same_skeletons(trained_checkpoint, pose_stage):
    """3 s of an empty, noisy scene, then the people of a real video walk in: the empty part is posed
    twice a second; the first frame with people is posed, and every frame after it gives the same ids
    and boxes as a run that poses every frame."""
    from actionlstm.export import load_classifier

    people, fps = read_video(shared_video("exercise_3people.avi"))
    people = people[:30]
    rng = np.random.default_rng(1)
    empty = np.full_like(people[0], 128)
    frames = [_noisy(empty, rng) for _ in range(round(3 * fps))] + people
    entrance = len(frames) - len(people)
    clf = load_classifier(trained_checkpoint, CPU)

    def run(idle_fps: float) -> dict[int, list]:
        pipeline = ActionPipeline(pose_stage(), Tracker(), ActionRuntime(clf, CPU), idle_fps=idle_fps)
        return {r.frame: [(p.id, np.round(p.box, 1).tolist()) for p in r.persons] for r in pipeline.stream(_LiveFile(frames, fps))}

    gated, every = run(2.0), run(0.0)
    assert len(every) == len(frames)
    assert sorted(k for k in gated if k < entrance) == [0, 5, 10, 15, 20, 25]  # 10 fps, posed every 0.5 s
    assert all(not gated[k] for k in gated if k < entrance)
    assert all(k in gated for k in range(entrance, len(frames))), "a frame with people was held back"
    assert gated[entrance + 1], "the people were not listed once the tracker confirmed them (their second frame)"
    assert {k: gated[k] for k in range(entrance, len(frames))} == {k: every[k] for k in range(entrance, len(frames))}


@pytest.mark.video
def test_polled_sources_never_wait_for_a_silent_camera(trained_checkpoint, pose_stage, tmp_path):
    """Two live cameras, one delivering a frame a second: the other keeps its own rate. Read in turn,
    each step would wait a second for the slow camera's next frame."""
    from actionlstm.export import load_classifier

    frames, _ = read_video(shared_video("exercise_3people.avi"))
    busy = write_video(tmp_path / "busy.avi", frames[:60], 10.0)
    slow = write_video(tmp_path / "slow.avi", frames[:4], 1.0)
    clf = load_classifier(trained_checkpoint, CPU)
    pipeline = ActionPipeline(pose_stage(), Tracker(), ActionRuntime(clf, CPU))
    counts, start = [0, 0], time.monotonic()
    with LiveSource(str(busy), realtime_file=True) as fast_source, LiveSource(str(slow), realtime_file=True) as slow_source:
        for step in pipeline.stream_many([fast_source, slow_source]):
            for result in step:
                counts[result.source] += 1
            if time.monotonic() - start > 3.5:
                break
    assert counts[1] <= 5
    assert counts[0] >= 10, counts  # 35 frames came in 3.5 s; read in turn, no more than the slow camera's 4 or 5


def test_auto_chooses_int8_for_the_live_stages_only():
    weights = resolve_pose_model(None)
    assert choose_backend("auto", CPU, weights, int8=True) == "openvino-int8"
    assert choose_backend("auto", CPU, weights) == "openvino"  # skeletons for pickles (extract, record) stay FP32
    assert RecognizerSettings(checkpoint="falls").auto_int8 and not PoseSettings().auto_int8
    with pytest.raises(UserError, match="runs on the CPU"):
        choose_backend("openvino-int8", torch.device("cuda"), weights)


@pytest.mark.video
def test_int8_keypoints_lie_within_two_percent_of_height_of_fp32(pose_stage):
    """The median distance between INT8's and FP32's keypoints (both confident) over real frames of
    three people, as a fraction of each person's height, and the same people found."""
    fp32, int8 = pose_stage("openvino"), pose_stage("openvino-int8")
    assert int8.backend == "openvino-int8"
    distances, people, found = [], 0, 0
    with VideoFileSource(shared_video("exercise_3people.avi")) as source:
        images = [frame.image for frame in source if frame.index % 20 == 0]
    for image in images:
        a, b = fp32(image), int8(image)
        for i in np.flatnonzero(a.confidences >= 0.5):  # each person FP32 is sure of ...
            people += 1
            overlap = [_iou(a.boxes[i], box) for box in b.boxes] or [0.0]
            j = int(np.argmax(overlap))
            if overlap[j] < 0.7 or b.confidences[j] < 0.25:
                continue  # ... INT8 finds at the same place, strongly enough for the tracker to start a track
            found += 1
            seen = (a.scores[i] > 0.5) & (b.scores[j] > 0.5)
            height = a.boxes[i, 3] - a.boxes[i, 1]
            distances += (np.linalg.norm(a.keypoints[i] - b.keypoints[j], axis=1)[seen] / height).tolist()
    assert people >= 50 and found >= 0.95 * people
    assert np.median(distances) < 0.02


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    return float(inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter))


@pytest.mark.video
def test_quantize_pose_makes_the_int8_model_from_a_users_footage(tmp_path, monkeypatch, single_thread):
    """`actionlstm quantize-pose VIDEO` makes the INT8 model from the user's frames, where run and serve
    find it (cached: not made again), and the model runs; a video that is not there is one line."""
    from pipeline.pose import PoseEstimator
    from tests.helpers import run_cli

    monkeypatch.setenv("ACTIONLSTM_CACHE_DIR", str(tmp_path / "cache"))
    missing = run_cli("quantize-pose", tmp_path / "nothing.mp4")
    assert missing.returncode == 1 and "not found" in missing.stderr
    result = run_cli("quantize-pose", shared_video("exercise_3people.avi"), "--imgsz", 160)
    assert result.returncode == 0, result.stderr
    assert "on 1 video" in result.stderr
    [model] = (tmp_path / "cache").rglob("*_int8_openvino_model")
    assert str(model) in result.stdout.replace("\n", "")
    made = next(model.glob("*.bin")).stat().st_mtime_ns
    assert int8_model(resolve_pose_model(None), 160) == str(model) and next(model.glob("*.bin")).stat().st_mtime_ns == made
    image = read_video(shared_video("exercise_3people.avi"))[0][20]
    assert len(PoseEstimator(None, CPU, imgsz=160, backend="openvino-int8")(image)) >= 1


def test_a_live_video_that_starts_on_an_empty_room_is_saved_at_the_cameras_rate(tmp_path):
    """The first second posed twice (the motion gate), then every frame of a 20 fps camera: the video
    runs at 20 fps and lasts as long as the capture, its later frames each written once."""
    import cv2

    from pipeline.outputs import VideoOutput

    video = VideoOutput(tmp_path / "live.avi", fps=30.0, live=True)
    frame = np.zeros((48, 64, 3), np.uint8)
    for index in [0, 10, 20, *range(21, 81)]:  # capture numbers; times from the camera's 20 fps
        video.write(frame, index / 20, index)
    video.close()
    video.publish()
    capture = cv2.VideoCapture(str(tmp_path / "live.avi"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(20.0)
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 81
    capture.release()
