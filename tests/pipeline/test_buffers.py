"""Per-person ring buffers: order across wrap-around, missed frames, freeing, full windows at any rate."""

import numpy as np

from actionlstm.preprocess import PreprocessConfig
from pipeline.buffers import TrackBuffers

CFG = PreprocessConfig()


def _pose(value: float) -> tuple[np.ndarray, np.ndarray]:
    return np.full((1, 17, 2), value, np.float32), np.ones((1, 17), np.float32)


def test_ring_keeps_the_newest_frames_in_order():
    buffers = TrackBuffers(CFG, source_fps=25.0, img_shape=(240, 320))
    total = buffers.capacity * 2 + 7  # wraps around twice
    for t in range(total):
        buffers.update(t / 25.0, np.array([3]), *_pose(t))
    keypoint, _, timestamps = buffers[3].frames()
    assert len(keypoint) == buffers.capacity
    assert keypoint[:, 0, 0].tolist() == list(range(total - buffers.capacity, total))
    assert np.all(np.diff(timestamps) > 0)


def test_missed_detection_is_an_empty_frame_and_absent_persons_are_freed():
    buffers = TrackBuffers(CFG, source_fps=10.0, img_shape=(240, 320), forget_seconds=2.0)
    buffers.update(0.0, np.array([1, 2]), np.ones((2, 17, 2), np.float32), np.ones((2, 17), np.float32))
    buffers.update(0.1, np.array([1]), *_pose(5.0))  # person 2 not detected in this frame
    keypoint, score, _ = buffers[2].frames()
    assert len(keypoint) == 2 and not keypoint[1].any() and not score[1].any()
    for step in range(2, 25):  # person 2 stays away for 2.4 s
        buffers.update(step / 10.0, np.array([1]), *_pose(step))
    assert 1 in buffers and 2 not in buffers


def test_window_spans_the_training_duration_at_any_source_rate():
    for fps in (8.0, 30.0, 60.0):
        buffers = TrackBuffers(CFG, source_fps=fps, img_shape=(480, 640))
        for t in range(int(fps * 6)):  # 6 s, more than one 4.8 s window
            buffers.update(t / fps, np.array([0]), *_pose(t))
        keypoint, _ = buffers[0].window(CFG)
        assert len(keypoint) == CFG.window, fps
