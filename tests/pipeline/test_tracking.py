"""The tracking stage: ultralytics' ByteTrack and BoT-SORT on the pose stage's detections of a real
video keep the three people's ids; reset() starts ids again at 1; a person missing for up to the lost
time keeps their id, one frame longer gets a new one, at 10 and 30 fps, and the ring buffers let the
person go in the same frame."""

import cv2
import numpy as np
import pytest
import torch

from actionlstm.errors import UserError
from actionlstm.preprocess import PreprocessConfig
from pipeline.buffers import TrackBuffers
from pipeline.pose import Detections, PoseEstimator
from pipeline.tracking import TRACKERS, Tracker
from tests.helpers import shared_video

pytestmark = pytest.mark.video

FPS = 10.0  # exercise_3people.avi
BLANK = np.zeros((288, 384, 3), np.uint8)
NOBODY = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32))


def _person(x: float) -> Detections:
    """One confidently detected person standing still, built by hand."""
    return Detections(
        np.array([[x, 50, x + 60, 250]], np.float32),
        np.array([0.9], np.float32),
        np.zeros((1, 17, 2), np.float32),
        np.ones((1, 17), np.float32),
    )


@pytest.fixture(scope="module")
def clip() -> tuple[list[np.ndarray], list[Detections]]:
    """The first 60 frames (6 s) of a video of three people exercising, and their detections.

    The pose stage runs once, at the video's own width (no upscaling, and 4x fewer pixels than at
    640); each tracker is then run on the same detections.
    """
    capture = cv2.VideoCapture(str(shared_video("exercise_3people.avi")))
    frames = [capture.read()[1] for _ in range(60)]
    capture.release()
    assert all(frame is not None for frame in frames)
    pose = PoseEstimator(None, torch.device("cpu"), imgsz=384, backend="torch")
    return frames, [pose(frame) for frame in frames]


def _track(tracker: Tracker, clip) -> list:
    return [tracker(detections, frame) for frame, detections in zip(*clip)]


@pytest.mark.parametrize("kind", TRACKERS)
def test_the_three_people_keep_their_ids(clip, kind):
    tracked = _track(Tracker(kind, fps=FPS), clip)
    left_to_right = tracked[0].track_ids[np.argsort(tracked[0].boxes[:, 0])].tolist()
    for poses in tracked:
        assert sorted(poses.track_ids.tolist()) == [1, 2, 3]
        # Same id, same person: the three stay in their places from left to right.
        assert poses.track_ids[np.argsort(poses.boxes[:, 0])].tolist() == left_to_right


def test_reset_starts_ids_again_at_1_with_the_same_result(clip):
    tracker = Tracker("bytetrack", fps=FPS)
    first = _track(tracker, clip)
    newcomer = [tracker(_person(300.0), BLANK) for _ in range(2)][-1]
    assert len(newcomer) == 1 and newcomer.track_ids[0] > 3  # ids go on counting until the reset
    tracker.reset(FPS)
    again = _track(tracker, clip)
    assert sorted(again[0].track_ids.tolist()) == [1, 2, 3]
    for a, b in zip(first, again):
        assert np.array_equal(a.track_ids, b.track_ids) and np.array_equal(a.boxes, b.boxes)


def _ids_after_gap(tracker: Tracker, fps: float, gap: int) -> tuple[list[int], bool]:
    """Ids of a person seen 5 frames, missing `gap` frames, seen 2 more, in the real tracker; and whether
    the ring buffers, fed the same frames at their timestamps, still held the person when they came back."""
    tracker.reset(fps)
    buffers = TrackBuffers(PreprocessConfig(), fps, BLANK.shape[:2], forget_seconds=tracker.lost_time)
    frames = [_person(100.0)] * 5 + [NOBODY] * gap + [_person(100.0)] * 2
    ids, kept = [], True
    for index, detections in enumerate(frames):
        poses = tracker(detections, BLANK)
        if index == 5 + gap:  # the person is back: was their buffer kept through the gap?
            kept = 1 in buffers
        buffers.update(index / fps, poses.track_ids, poses.keypoints, poses.scores)
        ids += poses.track_ids.tolist()
    return ids, kept


@pytest.mark.parametrize("kind", TRACKERS)
@pytest.mark.parametrize("fps", [10.0, 30.0])
def test_a_person_keeps_their_id_for_the_lost_time_and_no_longer(kind, fps):
    tracker = Tracker(kind, lost_seconds=2.0, fps=fps)
    assert tracker.lost_frames == round(2.0 * fps)
    ids, kept = _ids_after_gap(tracker, fps, gap=tracker.lost_frames)
    assert set(ids) == {1} and len(ids) == 7 and kept
    ids, kept = _ids_after_gap(tracker, fps, gap=tracker.lost_frames + 1)
    assert ids[:5] == [1] * 5 and set(ids[5:]) == {2} and not kept  # a new person, confirmed on their 2nd frame


def test_buffers_let_go_in_the_frame_the_tracker_does_at_any_start():
    """Timestamps index / fps do not add up exactly; the buffers' lost time absorbs their rounding."""
    for fps in (10.0, 25.0, 29.97, 30.0):
        tracker = Tracker(fps=fps)
        keypoints, scores = np.zeros((1, 17, 2), np.float32), np.ones((1, 17), np.float32)
        for start in range(0, 2000, 7):
            buffers = TrackBuffers(PreprocessConfig(), fps, BLANK.shape[:2], forget_seconds=tracker.lost_time)
            buffers.update(start / fps, np.array([start]), keypoints, scores)
            buffers.update((start + tracker.lost_frames) / fps, np.zeros(0, np.int64), keypoints[:0], scores[:0])
            assert start in buffers, (fps, start)
            buffers.update((start + tracker.lost_frames + 1) / fps, np.zeros(0, np.int64), keypoints[:0], scores[:0])
            assert start not in buffers, (fps, start)


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="unknown tracker"):
        Tracker("deepsort")
    for seconds in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(UserError, match="above 0"):
            Tracker(lost_seconds=seconds)
