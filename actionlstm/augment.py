"""Training-only augmentations: what the camera and the clip could have been, but weren't.

Spatial augmentations act on normalised coordinates (inside `preprocess`, batched); temporal ones
pick which frames a training window holds (`sample_training_window`). Inference uses neither.
"""

from dataclasses import dataclass

import numpy as np

from actionlstm.preprocess import PreprocessConfig, person_seen, resample
from actionlstm.skeleton import FLIP_INDEX


@dataclass(frozen=True)
class AugmentConfig:
    rotate_degrees: float = 15.0  # uniform in [-r, r]
    scale_range: tuple[float, float] = (0.85, 1.15)  # independent x and y scale
    flip_prob: float = 0.5  # mirror left/right, swapping joint sides
    # Playback speed: people do the same action at different paces. (0.8, 1.25) scored the same on JHMDB's
    # three folds inside the train splits (0.798 against 0.796, seeds 0-2; scripts/recipe_study.py --cv),
    # so the range a few dozen own clips were given stays.
    speed_range: tuple[float, float] = (0.67, 1.5)
    short_crop_prob: float = 0.4  # train on a window shorter than full, as the live buffer fills
    prefix_prob: float = 0.5  # such a short window starts at the clip's first frame, as a live buffer does
    # Scores remapped per window, s -> floor + (1 - floor) * s ** gamma + noise (log-uniform gamma), as
    # another pose model would score the same joints (see `remap_scores`; (1, 1), (0, 0), 0 turns it off).
    score_gamma_range: tuple[float, float] = (0.5, 2.0)
    score_floor_range: tuple[float, float] = (0.0, 0.5)
    score_noise: float = 0.05
    # Per window, each joint unseen throughout with this chance (see `drop_joints`): a limb behind the
    # body or out of the picture. 0.1 scored 0.791 against 0.783 without on JHMDB's three folds inside
    # the train splits (scripts/recipe_study.py --cv), 0.2 scored 0.792.
    drop_joint_prob: float = 0.1
    # Per window, the camera turned around the person by up to `yaw_degrees` and tilted by up to
    # `pitch_degrees` (uniform), with the person travelling towards or away from the camera at up to
    # `forward_speed` body sizes a second (uniform), unseen from the front (see `turned`). A model that
    # learnt from front views otherwise reads a side view's narrow shoulders, a hop's travel across the
    # picture, and every 2D distance they change, as another action (issue 37, docs/views.md). HDM05
    # through virtual cameras, front / back views to side views, each train actor held out in turn
    # (scripts/recipe_study.py --cross-view --cv): 0.967 with all three, 0.957 without, 0.935 with the
    # turn and tilt but no travel. With yaw and pitch 0 nothing is drawn, as before these existed.
    yaw_degrees: float = 90.0
    pitch_degrees: float = 30.0
    forward_speed: float = 1.0


def turned(coords: np.ndarray, valid: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, travel: np.ndarray) -> np.ndarray:
    """Normalised coordinates [B, W, J, 2] as a camera turned by `yaw` around the vertical and tilted by
    `pitch` (radians, [B] each) would show them, as far as a 2D skeleton can say: x about the body's
    centre times cos(yaw), y times cos(pitch), and sin(yaw) of a travel towards or away from the
    camera (`travel` [B], body sizes a frame), which the first view hid, across the picture about the
    window's middle frame. A turn of 90 degrees collapses the shoulders onto one line, as a side view
    does; what the body itself does in depth (a kick towards the camera) a 2D skeleton does not hold."""
    frames = np.arange(coords.shape[1], dtype=np.float32)
    shown = valid.any(-1)  # [B, W]: frames that show the person
    middle = (shown * frames).sum(1) / np.maximum(shown.sum(1), 1)
    out = coords * np.stack([np.cos(yaw), np.cos(pitch)], -1)[:, None, None, :]
    out[..., 0] += (np.sin(yaw) * travel)[:, None, None] * (frames[None, :, None] - middle[:, None, None])
    return out.astype(np.float32)


def view_matrix(roll: np.ndarray, scale: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Per window [B, 2, 2]: normalised coordinates mirrored where `flip` [B], rolled in the picture by
    `roll` [B] (radians), then scaled by `scale` [B, 2] along x and y."""
    cos, sin = np.cos(roll), np.sin(roll)
    matrix = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # [B, 2, 2]
    matrix = matrix * scale[:, :, None]
    matrix[flip, :, 0] *= -1  # x -> -x before rotating
    return matrix


class SpatialAugment:
    """Random rotation, anisotropic scale, left/right flip and a turned or tilted camera (`turned`) for
    a batch of normalised skeletons at `fps` frames a second."""

    def __init__(self, cfg: AugmentConfig, rng: np.random.Generator, fps: float = PreprocessConfig.fps):
        self.cfg = cfg
        self.rng = rng
        self.fps = fps

    def __call__(self, coords: np.ndarray, score: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = coords.shape[0]
        angle = np.deg2rad(self.rng.uniform(-self.cfg.rotate_degrees, self.cfg.rotate_degrees, batch))
        scale = self.rng.uniform(*self.cfg.scale_range, size=(batch, 2))
        flip = self.rng.random(batch) < self.cfg.flip_prob
        turn, tilt, pace = self.cfg.yaw_degrees, self.cfg.pitch_degrees, self.cfg.forward_speed
        if turn > 0 or tilt > 0:  # no draw when off: recipes without it draw what they drew
            yaw = np.deg2rad(self.rng.uniform(-turn, turn, batch))
            pitch = np.deg2rad(self.rng.uniform(-tilt, tilt, batch))
            coords = turned(coords, valid, yaw, pitch, self.rng.uniform(-pace, pace, batch) / self.fps)

        coords = np.einsum("bij,btkj->btki", view_matrix(angle, scale, flip), coords).astype(np.float32)
        if flip.any():
            coords[flip] = coords[flip][:, :, FLIP_INDEX]
            score = score.copy()
            score[flip] = score[flip][:, :, FLIP_INDEX]
            valid = valid.copy()
            valid[flip] = valid[flip][:, :, FLIP_INDEX]
        coords = np.where(valid[..., None], coords, 0.0)
        return coords, score, valid


def remap_scores(score: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Raw scores [B, W, J] of a batch of windows as another pose model might give them: one random
    monotone remap per window, plus noise. Undetected joints (score 0) stay undetected; a remapped
    score may cross the missing-joint threshold either way, as with a more or less confident detector.

    The model reads only which joints are seen (`PreprocessConfig.score_feature`), but which ones pass
    the threshold depends on the detector too: YOLO-pose scores a joint outside the picture near 0,
    HRNet's heatmap maxima rarely go that low. Without this a model trained on one and run on the
    other meets joints it never saw (scripts/score_ablation.py)."""
    batch = (len(score), 1, 1)
    gamma = np.exp(rng.uniform(*np.log(cfg.score_gamma_range), batch))
    floor = rng.uniform(*cfg.score_floor_range, batch)
    noise = rng.normal(0.0, cfg.score_noise, score.shape) if cfg.score_noise > 0 else 0.0
    remapped = floor + (1 - floor) * np.clip(score, 0, 1) ** gamma + noise
    return np.where(score > 0, np.clip(remapped, 0, 1), score).astype(np.float32)


def drop_joints(score: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Scores [B, W, J] with each joint of each window, with `cfg.drop_joint_prob`, unseen for the
    whole window: a limb behind the body or out of the picture. No draw at all when it is 0."""
    if cfg.drop_joint_prob <= 0:
        return score
    dropped = rng.random((score.shape[0], 1, score.shape[2])) < cfg.drop_joint_prob
    return np.where(dropped, np.zeros_like(score), score)


def sample_training_window(
    keypoint: np.ndarray,
    score: np.ndarray,
    clip_fps: float,
    pre: PreprocessConfig,
    aug: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A random temporal crop of one clip (recorded at `clip_fps`) at a random playback speed,
    resampled to `pre.fps` in one step, at most `pre.window` frames.

    Crops look like what the live classifier sees: its window always ends on a frame in which the
    person is visible (only visible persons are classified), and while a buffer fills it starts at
    the person's first frame. So a crop ends on a frame showing the person (when the clip has one
    late enough), and a short crop is, with `prefix_prob`, the start of the person's appearance.
    """
    speed = rng.uniform(*aug.speed_range)
    if abs(clip_fps * speed - pre.fps) > 1e-3 and len(keypoint) > 1:
        timestamps = np.arange(len(keypoint)) / (clip_fps * speed)
        keypoint, score = resample(keypoint, score, timestamps, pre.fps, score_threshold=pre.score_threshold)
    frames = len(keypoint)
    length = min(frames, pre.window)
    prefix = False
    if rng.random() < aug.short_crop_prob and length > pre.min_frames:
        length = int(rng.integers(pre.min_frames, length + 1))
        prefix = rng.random() < aug.prefix_prob
    seen = np.flatnonzero(person_seen(score, pre))
    if prefix:
        start = min(int(seen[0]), frames - length) if len(seen) else 0
    elif len(ends := seen[seen >= length - 1]):
        start = int(rng.choice(ends)) - length + 1
    elif len(seen) and seen[-1] + 1 >= pre.min_frames:  # seen only early on: end on the last frame that shows the person
        start, length = 0, int(seen[-1]) + 1
    else:
        start = int(rng.integers(0, frames - length + 1))
    return keypoint[start : start + length], score[start : start + length]
