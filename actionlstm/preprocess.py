"""Skeleton transforms shared by training, evaluation and the live pipeline.

A sequence enters as it is stored in a UCF101 skeleton pickle: pixel coordinates `[T, 17, 2]` and
scores `[T, 17]` of one person. Frame sampling differs by use (training crops at random, evaluation
covers the whole clip, the live buffer takes its newest frames, resampled to the training rate), but
every window reaches the model through `preprocess`, the one function that turns skeletons into
model inputs. Its parameters live in `PreprocessConfig`, which is saved inside each checkpoint.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from actionlstm.skeleton import NUM_JOINTS, PARENTS

# Per joint: normalised x, y; bone x, y; velocity x, y; score (see `score_feature`); with
# `slow_motion`, a second velocity x, y measured over that many frames.
FEATURES_PER_JOINT = 7
SLOW_FEATURES_PER_JOINT = 2
PAIRS = np.triu_indices(NUM_JOINTS, k=1)  # joint pairs (i < j) of the distance features
MAX_EMPTY_FRAMES = 1000
SCORE_FEATURES = ("raw", "mask")


@dataclass(frozen=True)
class PreprocessConfig:
    window: int = 120  # frames the model sees at once
    fps: float = 25.0  # the frame rate of the training clips; live windows are resampled to it
    score_threshold: float = 0.05  # a joint scored at or below this counts as missing
    min_frames: int = 25  # the shortest window the live classifier predicts on (1 s at 25 fps)
    # What the model sees of a joint's score: "mask" (1 seen, 0 missing) or "raw" (the detector's
    # confidence). Raw confidences differ between pose models (HRNet heatmap maxima in ucf101_2d.pkl,
    # YOLO-pose live), so a model that reads them meets other numbers live than in training.
    score_feature: str = "mask"
    # The distance between every two seen joints (DD-Net's joint collection distances): unchanged by
    # where the person stands, how the camera frames them and, unlike coordinates, by rotation, so a
    # small movement (a wave, a catch) shows as a change of a few distances whatever the view.
    distances: bool = True
    # A second velocity, over this many frames (0: none): a brief movement is a spike in the
    # frame-to-frame velocity, a slow one stands out only over a longer gap (DD-Net's two motions).
    slow_motion: int = 4

    # Settings added after the first checkpoints, with the value those checkpoints were trained with.
    ADDED_LATER: ClassVar[dict[str, Any]] = {"score_feature": "raw", "distances": False, "slow_motion": 0}

    def __post_init__(self) -> None:
        if not (self.window >= 1 and self.fps > 0 and self.min_frames >= 1):
            raise ValueError(f"window {self.window}, fps {self.fps}, min_frames {self.min_frames} are out of range")
        if self.slow_motion < 0:
            raise ValueError(f"slow_motion {self.slow_motion} is not a number of frames")
        if self.score_feature not in SCORE_FEATURES:
            raise ValueError(f"score_feature '{self.score_feature}' is not one of {', '.join(SCORE_FEATURES)}")

    @property
    def num_features(self) -> int:
        per_joint = FEATURES_PER_JOINT + (SLOW_FEATURES_PER_JOINT if self.slow_motion else 0)
        return NUM_JOINTS * per_joint + (len(PAIRS[0]) if self.distances else 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# An augmentation takes normalised coordinates [B, W, J, 2], scores and the validity mask
# (both [B, W, J]) and returns all three; only training passes one.
Augment = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def select_main_person(keypoint: np.ndarray, score: np.ndarray, total_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick the person of an `M x T` annotation whose keypoint scores sum highest: the one seen
    longest and most clearly.

    The live pipeline picks no one: each track has its own buffer (M = 1) and every visible person
    is classified. `actionlstm extract` writes a video's persons strongest first by this same total,
    so for its pickles this is the first person. M == 0 (nobody detected) gives `total_frames` empty
    frames: at least one, and at most `MAX_EMPTY_FRAMES`, since every window of an empty clip looks
    the same to the model.
    """
    if keypoint.shape[0] == 0:
        frames = min(max(int(total_frames), 1), MAX_EMPTY_FRAMES)
        return np.zeros((frames, NUM_JOINTS, 2), np.float32), np.zeros((frames, NUM_JOINTS), np.float32)
    totals = np.nansum(score.astype(np.float64), axis=(1, 2))
    main = int(np.argmax(totals))
    return keypoint[main].astype(np.float32), score[main].astype(np.float32)


def resample(
    keypoint: np.ndarray,
    score: np.ndarray,
    timestamps: np.ndarray,
    fps: float,
    window: int | None = None,
    score_threshold: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample frames taken at `timestamps` (seconds) to `fps`, ending at the newest frame.

    Joints are interpolated linearly between the two neighbouring frames and count as missing where
    either neighbour misses them: scored at or below `score_threshold` (pass the config's, as
    `preprocess` counts missing joints), zero or not finite. A pose model reports occluded joints
    with a low score and a guessed place; blending that guess in would make it count as seen. A
    target time that falls on a frame (within 1 us) takes that frame unchanged, so a 25 fps sequence
    resampled to 25 fps is returned exactly as it came.
    `window` keeps only the newest frames.
    """
    timestamps = np.asarray(timestamps, np.float64)
    span_frames = int(np.floor((timestamps[-1] - timestamps[0]) * fps + 1e-6)) + 1
    count = span_frames if window is None else min(window, span_frames)
    targets = timestamps[-1] - np.arange(count - 1, -1, -1) / fps
    left = np.clip(np.searchsorted(timestamps, targets + 1e-6, side="right") - 1, 0, len(timestamps) - 1)
    right = np.minimum(left + 1, len(timestamps) - 1)
    gap = timestamps[right] - timestamps[left]
    offset = targets - timestamps[left]
    exact = (offset <= 1e-6) | (gap <= 0)
    w = np.where(exact, 0.0, offset / np.where(gap > 0, gap, 1.0)).astype(np.float32)[:, None]

    valid = np.isfinite(keypoint).all(-1) & np.isfinite(score) & (score > max(score_threshold, 0.0))
    both = valid[left] & valid[right]
    blend_kp = (1 - w[..., None]) * keypoint[left] + w[..., None] * keypoint[right]
    blend_sc = (1 - w) * score[left] + w * score[right]
    kp = np.where(exact[:, None, None], keypoint[left], np.where(both[..., None], blend_kp, 0.0))
    sc = np.where(exact[:, None], score[left], np.where(both, blend_sc, 0.0))
    return kp.astype(np.float32), sc.astype(np.float32)


def eval_window_starts(num_frames: int, window: int) -> list[int]:
    """Start frames of windows that together cover every frame of a clip: one for short clips, else
    ceil(frames / window) evenly spaced ones from the first frame to the last."""
    if num_frames <= window:
        return [0]
    count = int(np.ceil(num_frames / window))
    return sorted({int(round(s)) for s in np.linspace(0, num_frames - window, count)})


def stack_windows(windows: list[tuple[np.ndarray, np.ndarray]], window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left-align windows of up to `window` frames into zero-padded arrays plus their lengths."""
    batch = len(windows)
    keypoint = np.zeros((batch, window, NUM_JOINTS, 2), np.float32)
    score = np.zeros((batch, window, NUM_JOINTS), np.float32)
    lengths = np.zeros(batch, np.int64)
    for i, (kp, sc) in enumerate(windows):
        n = min(len(kp), window)
        keypoint[i, :n] = kp[:n]
        score[i, :n] = sc[:n]
        lengths[i] = n
    return keypoint, score, lengths


def person_seen(score: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Per frame of a sequence's scores [T, 17]: whether any joint of the person is seen in it."""
    return (score > cfg.score_threshold).any(axis=-1)


def _valid_joints(keypoint: np.ndarray, score: np.ndarray, lengths: np.ndarray, threshold: float) -> np.ndarray:
    """A joint is usable when it lies inside the window, its coordinates are finite and its score
    passes the threshold; NaN coordinates and empty frames (all zeros) become missing joints."""
    in_window = np.arange(keypoint.shape[1])[None, :] < lengths[:, None]
    finite = np.isfinite(keypoint).all(-1) & np.isfinite(score)
    return in_window[..., None] & finite & (np.nan_to_num(score) > threshold)


def normalize(keypoint: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Body-centred, scale-normalised coordinates, one frame of reference per window.

    The centre is the mean of all valid joints in the window and the unit is the median over frames
    of the skeleton's larger side, so the camera's framing and resolution drop out while the
    person's own movement across the window (a walk, a jump) stays visible.
    """
    batch = keypoint.shape[0]
    mask = valid[..., None]
    kp = np.where(mask, keypoint, 0.0)
    count = valid.sum(axis=(1, 2))
    centre = kp.sum(axis=(1, 2)) / np.maximum(count, 1)[:, None]

    low = np.where(mask, keypoint, np.inf).min(axis=2)
    high = np.where(mask, keypoint, -np.inf).max(axis=2)
    frame_ok = valid.sum(axis=2) >= 2
    extent = np.where(frame_ok, (high - low).max(axis=-1), np.inf)
    extent.sort(axis=1)
    ok_frames = frame_ok.sum(axis=1)
    median = extent[np.arange(batch), np.maximum((ok_frames - 1) // 2, 0)]
    scale = np.where((ok_frames > 0) & (median > 0) & np.isfinite(median), median, 1.0)

    coords = (kp - centre[:, None, None, :]) / scale[:, None, None, None]
    return np.where(mask, coords, 0.0).astype(np.float32)


def score_feature(score: np.ndarray, valid: np.ndarray, kind: str) -> np.ndarray:
    """The score channel: the validity mask, or the raw score of valid joints (`PreprocessConfig.score_feature`)."""
    return (valid if kind == "mask" else np.where(valid, score, 0.0)).astype(np.float32)


def velocity(coords: np.ndarray, valid: np.ndarray, fps: float, gap: int) -> np.ndarray:
    """Per frame and joint, (position now - position `gap` frames earlier) per second; zero where
    either end misses the joint and in the first `gap` frames."""
    moved = np.zeros_like(coords)
    if gap < coords.shape[1]:
        both = valid[:, gap:] & valid[:, :-gap]
        moved[:, gap:] = np.where(both[..., None], (coords[:, gap:] - coords[:, :-gap]) * (fps / gap), 0.0)
    return moved


def pair_distances(coords: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per frame, the distance of every joint pair in `PAIRS` [B, W, 136]; zero where either joint is missing."""
    first, second = PAIRS
    both = valid[:, :, first] & valid[:, :, second]
    return np.where(both, np.linalg.norm(coords[:, :, first] - coords[:, :, second], axis=-1), 0.0)


def joint_features(coords: np.ndarray, score: np.ndarray, valid: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Per frame: for each joint position, bone (joint minus parent), velocity (per second), the score
    channel and, with `cfg.slow_motion`, the slow velocity; then, with `cfg.distances`, the pair distances."""
    parents = np.asarray(PARENTS)
    bone_ok = valid & valid[:, :, parents]
    bone = np.where(bone_ok[..., None], coords - coords[:, :, parents], 0.0)
    per_joint = [coords, bone, velocity(coords, valid, cfg.fps, 1), score[..., None]]
    if cfg.slow_motion:
        per_joint.append(velocity(coords, valid, cfg.fps, cfg.slow_motion))
    batch, frames = coords.shape[:2]
    parts = [np.concatenate(per_joint, axis=-1).reshape(batch, frames, -1)]
    if cfg.distances:
        parts.append(pair_distances(coords, valid))
    return np.concatenate(parts, axis=-1).astype(np.float32)


def preprocess(
    keypoint: np.ndarray,
    score: np.ndarray,
    lengths: np.ndarray,
    cfg: PreprocessConfig,
    augment: Augment | None = None,
) -> np.ndarray:
    """The one path from skeleton windows to model inputs, used by training and live inference.

    keypoint [B, W, 17, 2] pixels, score [B, W, 17], lengths [B]: windows at `cfg.fps`, left-aligned,
    zero beyond their length (see `stack_windows`). Returns float32 [B, W, cfg.num_features]; frames
    past a window's length are zero and the model masks them.
    """
    keypoint = np.asarray(keypoint, np.float32)
    score = np.asarray(score, np.float32)
    valid = _valid_joints(keypoint, score, lengths, cfg.score_threshold)
    coords = normalize(keypoint, valid)
    if augment is not None:
        coords, score, valid = augment(coords, score, valid)
    return joint_features(coords, score_feature(score, valid, cfg.score_feature), valid, cfg)
