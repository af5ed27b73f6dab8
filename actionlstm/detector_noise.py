"""What YOLO-pose makes of a perfect projection of a person: the jitter, dropped joints, missed frames
and scores of `NoiseModel`, with defaults measured on its real output by `scripts/pose_noise.py`
(docs/mocap.md). `actionlstm.mocap` adds it to the skeletons it renders."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from actionlstm.skeleton import NUM_JOINTS

if TYPE_CHECKING:
    from actionlstm.mocap import Camera


# Measured by `python scripts/pose_noise.py /work/ext/falls.pkl /work/ext/actions.pkl` (YOLO11n-pose through
# `actionlstm extract` on ../shared/data/falls and ../shared/data/actions: 41 person tracks, 4,337 detected
# frames at 15-30 fps; docs/mocap.md), left and right averaged. Per body part: jitter (std as a fraction of
# the person's size, upright and still, near 296 px in the network's input), dropouts (score <= 0.05, joints
# inside the picture, face points only facing the camera), quantiles 10/25/50/75/90 of the seen scores.
PARTS = (
    (0.0013, 0.0010, 0.915, 0.973, 0.995, 0.996, 0.997),  # nose
    (0.0013, 0.0044, 0.579, 0.921, 0.980, 0.988, 0.992),  # eyes
    (0.0018, 0.0406, 0.264, 0.643, 0.817, 0.895, 0.946),  # ears
    (0.0026, 0.0065, 0.876, 0.966, 0.991, 0.996, 0.998),  # shoulders
    (0.0036, 0.0067, 0.556, 0.853, 0.950, 0.976, 0.991),  # elbows
    (0.0047, 0.0056, 0.452, 0.793, 0.917, 0.958, 0.984),  # wrists
    (0.0039, 0.0000, 0.857, 0.912, 0.968, 0.997, 0.999),  # hips
    (0.0036, 0.0127, 0.078, 0.190, 0.958, 0.994, 0.998),  # knees
    (0.0050, 0.0161, 0.535, 0.873, 0.958, 0.980, 0.988),  # ankles
)
PART_OF = (0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8)
SCORE_LEVELS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


@dataclass(frozen=True)
class NoiseModel:
    """What YOLO-pose makes of a perfect projection, defaults as measured (`PARTS`, comments).

    Jitter is AR(1) noise per joint and axis with std a fraction of the person's size (the larger side
    of the box around the seen joints), times (size / `reference_size`) ** -`size_exponent` with the
    size as the network's 640-wide input sees it (100-480 px; a frame under 640 is not credited for
    being upscaled) and up to `lying_jitter` times as the torso tips 30 to 60 degrees from the image's
    vertical. A joint's score follows a slow latent Gaussian (time constant `score_tau`): under its
    `dropout` quantile the joint drops (score under 0.05, its noisy place kept, as YOLO guesses one),
    over it the score follows the measured quantiles, so scores sink before joints drop. Whole frames
    are missed in runs, all joints zero.
    """

    jitter: tuple[float, ...] = tuple(PARTS[p][0] for p in PART_OF)
    dropout: tuple[float, ...] = tuple(PARTS[p][1] for p in PART_OF)
    scores: tuple[tuple[float, ...], ...] = tuple(PARTS[p][2:] for p in PART_OF)
    jitter_tau: float = 0.031  # s: second differences' lag-1 correlation -0.582 (white noise: -0.667), 33.5 ms frames
    size_exponent: float = 1.32  # body jitter 0.0143 / 0.0051 / 0.0032 / 0.0025 of the size at 100-150 / -200 / -300 / 300+ px
    reference_size: float = 296.0  # px in the network's input, the median of the measurement
    lying_jitter: float = 4.78  # lying / upright jitter on still frames, median over joints (all frames: 3.8)
    score_tau: float = 1.2  # s: 1.10 at 30 fps, 1.41 at 15 fps (lag-1 rank correlation, median over joints)
    missed: float = 0.0278  # share of frames between a person's first and last detection with none
    missed_run: float = 0.206  # s, a run of missed frames on average

    def apply(
        self, pixels: np.ndarray, seen: np.ndarray, hidden: np.ndarray, tilt: np.ndarray, camera: "Camera", rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Noisy pixels [T, 17, 2] and scores [T, 17] from perfect ones: `seen` joints are in the picture,
        `hidden` ones (a face turned away) dropped; `tilt` is the torso's angle to the image's vertical."""
        frames = len(pixels)
        size = _box_size(pixels, seen)
        size = np.where(np.isnan(size), np.nanmedian(size) if (~np.isnan(size)).any() else 1.0, size)
        network = np.clip(size * min(1.0, 640 / max(camera.width, camera.image_height)), 100, 480)
        lying = 1 + (self.lying_jitter - 1) * np.clip((tilt - 30) / 30, 0, 1)
        sigma = np.asarray(self.jitter) * (size * (network / self.reference_size) ** -self.size_exponent * lying)[:, None]
        noise = _ar1(rng, frames, 2 * NUM_JOINTS, self.jitter_tau * camera.fps).reshape(frames, NUM_JOINTS, 2)
        u = _normal_cdf(_ar1(rng, frames, NUM_JOINTS, self.score_tau * camera.fps))
        drop = np.asarray(self.dropout)
        above = np.clip((u - drop) / np.maximum(1 - drop, 1e-9), 0, 1)
        score = np.stack([np.interp(above[:, j], SCORE_LEVELS, (0.051, *self.scores[j], 0.999)) for j in range(NUM_JOINTS)], 1)
        score = np.where((u < drop) | hidden, 0.05 * rng.random(u.shape), score)
        keep = seen & ~_missed_frames(rng, frames, self.missed, self.missed_run * camera.fps)[:, None]
        noisy = np.clip(pixels + sigma[..., None] * noise, 0, [camera.width, camera.image_height])  # as ultralytics clips them
        return np.where(keep[..., None], noisy, 0.0), np.where(keep, score, 0.0)


def _box_size(pixels: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Per frame, the larger side of the box around the seen joints; NaN with fewer than two."""
    low = np.where(seen[..., None], pixels, np.inf).min(1)
    high = np.where(seen[..., None], pixels, -np.inf).max(1)
    return np.where(seen.sum(1) >= 2, (high - low).max(-1), np.nan)


def _ar1(rng: np.random.Generator, frames: int, count: int, tau_frames: float, block: int = 256) -> np.ndarray:
    """[frames, count] stationary unit-variance AR(1) series with lag-1 correlation exp(-1 / tau_frames),
    made a block of frames at a time by one matrix product (a loop over frames is slow in Python)."""
    rho, block = float(np.exp(-1.0 / tau_frames)) if tau_frames > 0 else 0.0, max(1, min(block, frames))
    lag = np.subtract.outer(np.arange(block), np.arange(block))
    weights, carry = np.where(lag >= 0, rho ** np.abs(lag), 0.0) * np.sqrt(1 - rho**2), rho ** np.arange(1, block + 1)
    out, last = np.empty((frames, count)), rng.standard_normal(count)
    for start in range(0, frames, block):
        n = min(block, frames - start)
        out[start : start + n] = weights[:n, :n] @ rng.standard_normal((n, count)) + carry[:n, None] * last
        last = out[start + n - 1]
    return out


def _missed_frames(rng: np.random.Generator, frames: int, share: float, run: float) -> np.ndarray:
    """[frames] bool: alternating runs of caught and missed frames of geometric lengths, `run` frames
    missed on average and `share` of all frames."""
    out, t, missed = np.zeros(frames, bool), 0, bool(rng.random() < share)
    means = (max(run, 1.0) * (1 - share) / max(share, 1e-9), max(run, 1.0))
    while t < frames:
        length = int(rng.geometric(1 / means[missed]))
        out[t : t + length], t, missed = missed, t + length, not missed
    return out


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z) through Abramowitz & Stegun 7.1.26's erf (error under 1.5e-7): numpy has no erf."""
    x = np.abs(z) / np.sqrt(2)
    t = 1 / (1 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return 0.5 * (1 + np.sign(z) * (1 - poly * np.exp(-x * x)))
