"""Per-person ring buffers holding each track's recent skeletons as a UCF101 pickle annotation would.

A buffer stores pixel keypoints [17, 2], scores [17] and the capture timestamp of every frame since
the track appeared (up to its capacity). A frame in which a tracked person was not detected is
stored as an empty frame (all zeros), exactly as the pickle marks frames without a person. The
classifier reads `window()`: the newest `window` frames resampled to the training frame rate.
"""

import math
from collections.abc import Collection

import numpy as np

from actionlstm.preprocess import PreprocessConfig, resample
from actionlstm.skeleton import NUM_JOINTS
from pipeline.settings import DOWN_MEMORY


class PersonBuffer:
    def __init__(self, track_id: int, capacity: int, img_shape: tuple[int, int]):
        self.track_id = track_id
        self.img_shape = img_shape  # (height, width), as in the pickle
        self.capacity = capacity
        self.keypoint = np.zeros((capacity, NUM_JOINTS, 2), np.float32)
        self.score = np.zeros((capacity, NUM_JOINTS), np.float32)
        self.timestamp = np.zeros(capacity, np.float64)
        self.count = 0  # frames pushed in total
        self.last_seen = -math.inf  # timestamp of the last frame the person was detected in
        self.last_box: list[float] | None = None  # their box in that frame (x1, y1, x2, y2), when the caller gives boxes

    def push(self, timestamp: float, keypoint: np.ndarray | None, score: np.ndarray | None, box: np.ndarray | None = None) -> None:
        """Append one frame; None means the person was not detected in it."""
        slot = self.count % self.capacity
        self.timestamp[slot] = timestamp
        if keypoint is None:
            self.keypoint[slot] = 0.0
            self.score[slot] = 0.0
        else:
            self.keypoint[slot] = keypoint
            self.score[slot] = score
            self.last_seen = timestamp
            if box is not None:
                self.last_box = [float(v) for v in box]
        self.count += 1

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def _order(self) -> np.ndarray:
        n = len(self)
        return (np.arange(self.count - n, self.count)) % self.capacity

    def frames(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Buffered keypoints, scores and timestamps, oldest first."""
        order = self._order()
        return self.keypoint[order], self.score[order], self.timestamp[order]

    def span(self) -> float:
        """Seconds between the oldest and newest buffered frame."""
        if len(self) == 0:
            return 0.0
        order = self._order()
        return float(self.timestamp[order[-1]] - self.timestamp[order[0]])

    def window(self, cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
        """The newest `cfg.window` frames at `cfg.fps`, ready for `preprocess` (via `stack_windows`)."""
        return window_of(self.frames(), cfg)

    def to_annotation(self) -> dict:
        """The buffer as one annotation of a UCF101 skeleton pickle (M = 1, label unknown = -1)."""
        keypoint, score, _ = self.frames()
        return {
            "frame_dir": f"track_{self.track_id}",
            "label": -1,
            "img_shape": self.img_shape,
            "original_shape": self.img_shape,
            "total_frames": len(keypoint),
            "keypoint": keypoint[None].copy(),
            "keypoint_score": score[None].copy(),
        }


def window_of(frames: tuple[np.ndarray, np.ndarray, np.ndarray], cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """`PersonBuffer.window` of buffered `frames` (keypoints, scores, timestamps) taken earlier."""
    keypoint, score, timestamp = frames
    return resample(keypoint, score, timestamp, cfg.fps, cfg.window, cfg.score_threshold)


class TrackBuffers:
    """One `PersonBuffer` per track id; a person not seen for more than `forget_seconds` frees theirs.

    The pipeline passes its tracker's `lost_time`, so a buffer is freed in the frame the tracker drops
    the person's id, and an id the tracker keeps always finds its buffer.
    """

    def __init__(self, cfg: PreprocessConfig, source_fps: float, img_shape: tuple[int, int], forget_seconds: float = 2.0):
        # Enough frames to cover one window's duration at the source's rate (and never fewer than the window).
        self.capacity = max(cfg.window, math.ceil(cfg.window / cfg.fps * max(source_fps, cfg.fps))) + 2
        self.img_shape = img_shape
        self.forget_seconds = forget_seconds
        self.buffers: dict[int, PersonBuffer] = {}

    def update(
        self,
        timestamp: float,
        track_ids: np.ndarray,
        keypoints: np.ndarray,
        scores: np.ndarray,
        boxes: np.ndarray | None = None,
        keep: Collection[int] = (),
    ) -> None:
        """One frame's tracked persons. A buffer unseen for `forget_seconds` is freed, except those in
        `keep` (persons down after a fall), kept for DOWN_MEMORY."""
        seen = {}
        for i, track_id in enumerate(track_ids.tolist()):
            if track_id >= 0:
                seen[track_id] = i
        for track_id, i in seen.items():
            if track_id not in self.buffers:
                self.buffers[track_id] = PersonBuffer(track_id, self.capacity, self.img_shape)
            self.buffers[track_id].push(timestamp, keypoints[i], scores[i], None if boxes is None else boxes[i])
        for track_id in list(self.buffers):
            if track_id in seen:
                continue
            buffer = self.buffers[track_id]
            if timestamp - buffer.last_seen > (max(self.forget_seconds, DOWN_MEMORY) if track_id in keep else self.forget_seconds):
                del self.buffers[track_id]
            else:
                buffer.push(timestamp, None, None)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self.buffers

    def __getitem__(self, track_id: int) -> PersonBuffer:
        return self.buffers[track_id]

    def __len__(self) -> int:
        return len(self.buffers)
