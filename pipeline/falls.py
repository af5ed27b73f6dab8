"""A fall read from the skeleton's geometry: a person who was up (on their feet, or on a seat) is on
the floor within a second and a half, and stays down there (or out of sight).

A model that learnt falls from a few dozen staged clips reads the falls of people it never saw
unevenly, and reads `fall` for what only looks like one: in another lab's rooms it read a fall for a
second or more after people sat down on a sofa, and the earlier cue here (the torso tipping while
the hips drop) read one whenever someone lay down on a bed or got down onto the floor on purpose:
2 daily activities in 3 raised an alarm. The geometry of a fall is the same for everyone and needs
no training; what separates a fall from those is where it ends and what follows:

- where: the hips end on the floor, the floor being where the ankles were while the person stood
  or sat (a bed or a sofa is half a metre higher: lying down there is no fall);
- on the way: no pause upright with the hips low (a sit, a kneel: getting down on purpose);
- after: for `confirm` seconds the hips stay on the floor and the torso does not sit up (someone who
  sat down on the floor on purpose sits up; someone who squatted stands up), or the person is out of
  sight (the pose model often loses someone lying on the floor).

The thresholds were chosen by cross-validation across GMDCSA24's subjects (its falls and daily
activities, through seven cameras) and HDM05's actors (11 motions through virtual cameras); the
study and its figures are in docs/falls.md, the benchmark is `scripts/falls_bench.py`.

A checkpoint carries its cue in `meta["fall"]` (the built-in `falls` does; checkpoints of the
earlier cue, `meta["descent"]`, get this one for the same label). Live, the cue's label is then read
from geometry alone (`pipeline.actions`): all the probability for `recent` seconds after a confirmed
fall, none of it otherwise; the model's other labels stand. Clip-level `evaluate` reads the model alone.
"""

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP, LEFT_ANKLE, RIGHT_ANKLE = 5, 6, 11, 12, 15, 16
MIN_TORSO_PIXELS = 2.0  # shoulders and hips closer than this point nowhere: that frame shows no torso


@dataclass(frozen=True)
class FallCue:
    label: str  # the class a fall is read as
    upright: float = 40.0  # degrees: a torso this close to vertical is upright ...
    high: float = 0.9  # ... with the hips this many torso lengths over the floor: up, on the feet or a seat
    legs: float = 1.5  # hip height over the ankles when standing, in torso lengths, where no ankle is seen
    near: float = 0.5  # seconds: a frame without ankles takes the floor from an upright frame this close that shows them
    within: float = 1.5  # seconds from the last frame up to the first frame on the floor
    floor: float = 0.7  # hips this close to the floor, in torso lengths of the frame up: on it
    pause: float = 0.3  # seconds upright with the hips low on the way (a sit, a kneel): getting down on purpose
    confirm: float = 1.0  # seconds watched after reaching the floor
    leave: float = 0.8  # ... in which the hips stay this close to the floor ...
    stay: float = 0.8  # ... in this share of the frames seen,
    lying: float = 55.0  # ... and the torso is this far from vertical, or ...
    short: float = 0.65  # ... this short against the frame up (lying along the camera's axis) ...
    share: float = 0.7  # ... in this share of them; or
    seen: float = 0.4  # ... the torso is seen in fewer than this share of the frames: out of sight
    recent: float = 2.0  # seconds the reading holds after the confirmation
    min_score: float = 0.3  # joints scored at or below this are not used

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FallReading:
    """What a person's buffered frames say."""

    fell: float | None  # the time they reached the floor in a fall confirmed within `recent` seconds, else None
    up: bool  # the newest frame shows them up (on their feet or a seat)


def fall_cue(meta: dict[str, Any], class_names: list[str]) -> tuple[FallCue, int] | None:
    """The cue a checkpoint carries and the index of its label, or None when it has none (or names
    a label the model does not have, as after fine-tuning onto other classes). A checkpoint of the
    earlier cue (`meta["descent"]`) gets this cue for the same label."""
    settings = meta.get("fall") or {k: v for k, v in (meta.get("descent") or {}).items() if k == "label"}
    if "label" not in settings:
        return None
    known = {f.name for f in fields(FallCue)}
    cue = FallCue(**{k: v for k, v in settings.items() if k in known})  # settings a later version added are left out
    return (cue, class_names.index(cue.label)) if cue.label in class_names else None


def torso(keypoint: np.ndarray, score: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame of [T, 17, 2] keypoints and [T, 17] scores: the torso's angle from the image's
    vertical in degrees (0 upright, 90 lying, more head down), the hips' height (pixel y, growing
    downwards), the torso's length in pixels (at least 1e-6, so that it divides), and whether a
    shoulder and a hip are seen (the rest is meaningless where not). Each end is the mean of its seen joints of the pair."""

    def middle(pair: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        seen = (score[:, pair] > min_score) & np.isfinite(keypoint[:, pair]).all(axis=-1)
        count = seen.sum(axis=1)
        total = np.where(seen[..., None], keypoint[:, pair], 0.0).sum(axis=1)
        return total / np.maximum(count, 1)[:, None], count > 0

    shoulders, shoulders_seen = middle((LEFT_SHOULDER, RIGHT_SHOULDER))
    hips, hips_seen = middle((LEFT_HIP, RIGHT_HIP))
    up = shoulders - hips
    angle = np.degrees(np.arctan2(np.abs(up[:, 0]), -up[:, 1]))
    length = np.hypot(up[:, 0], up[:, 1])
    return angle, hips[:, 1], np.maximum(length, 1e-6), shoulders_seen & hips_seen & (length >= MIN_TORSO_PIXELS)


def floor_line(
    keypoint: np.ndarray, score: np.ndarray, t: np.ndarray, hip: np.ndarray, length: np.ndarray, upright: np.ndarray, cue: FallCue
) -> np.ndarray:
    """Per frame, the pixel y of the floor under the person: the lower ankle of the nearest upright
    frame within `near` seconds whose ankles sit well below the hips (standing, or seated with the
    feet on the floor), else the hips plus `legs` torso lengths."""
    ankles = keypoint[:, [LEFT_ANKLE, RIGHT_ANKLE], 1]
    seen = (score[:, [LEFT_ANKLE, RIGHT_ANKLE]] > cue.min_score) & np.isfinite(ankles)
    lowest = np.where(seen, ankles, -np.inf).max(axis=1)
    feet = np.flatnonzero(upright & seen.any(axis=1) & (lowest - hip >= 0.5 * length))
    floor = hip + cue.legs * length
    if len(feet):
        nearest = feet[np.abs(t[:, None] - t[feet][None, :]).argmin(axis=1)]
        floor = np.where(np.abs(t[nearest] - t) <= cue.near, lowest[nearest], floor)
    return floor


def up_frames(
    keypoint: np.ndarray, score: np.ndarray, t: np.ndarray, torso_read: tuple[np.ndarray, ...], cue: FallCue
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame, from `torso`'s reading: upright (the torso within `upright` degrees of vertical), the
    floor's pixel y (`floor_line`), and up: upright with the hips `high` torso lengths or more over
    that floor, on the feet or a seat."""
    angle, hip, length, ok = torso_read
    upright = ok & (angle <= cue.upright)
    floor = floor_line(keypoint, score, t, hip, length, upright, cue)
    return upright, floor, upright & ((floor - hip) / length >= cue.high)


def paused(t: np.ndarray, low: np.ndarray, cue: FallCue) -> np.ndarray:
    """Frames that end `pause` seconds of consecutive `low` frames."""
    index = np.arange(len(t))
    first = np.maximum.accumulate(np.where(low, 0, index + 1)).clip(max=len(t) - 1)  # where each run of low frames began
    return low & (t - t[first] >= cue.pause)


def read_fall(keypoint: np.ndarray, score: np.ndarray, timestamp: np.ndarray, cue: FallCue) -> FallReading:
    """What a person's frames (oldest first, as `PersonBuffer.frames` gives them) say of a fall.

    Pairs (u, d) are read at once: u a frame up, d a frame on the floor `within` seconds later with no
    pause on the way; the fall is confirmed `confirm` seconds after d by what follows (see the module)."""
    t = np.asarray(timestamp, np.float64)
    angle, hip, length, ok = reading = torso(keypoint, score, cue.min_score)
    n = len(t)
    if not ok.any():
        return FallReading(None, False)
    upright, floor, up = up_frames(keypoint, score, t, reading, cue)
    gap = (floor[:, None] - hip[None, :]) / length[:, None]  # [u, k]: hips of k over the floor of u, in u's torso lengths
    short = length[None, :] <= cue.short * length[:, None]
    low = paused(t, upright & ~up, cue)[None, :] & ~short & (gap < cue.high)
    lows = np.cumsum(low, axis=1)  # [u, k]: pauses ended by frame k
    lows_before = np.concatenate([np.zeros((n, 1), int), lows[:, :-1]], axis=1)
    # What follows each frame d: frames (t_d, t_d + confirm].
    first, last = np.searchsorted(t, t, side="right"), np.searchsorted(t, t + cue.confirm, side="right")
    counted = np.concatenate([[0], np.cumsum(ok)])
    seen_after = counted[last] - counted[first]
    interval = (t[-1] - t[0]) / max(n - 1, 1)
    out_of_sight = seen_after < cue.seen * (cue.confirm / interval if interval > 0 else 1.0)

    def share(mask: np.ndarray) -> np.ndarray:  # [u, d]: share of the frames seen after d where `mask` holds
        summed = np.concatenate([np.zeros((n, 1)), np.cumsum(mask & ok[None, :], axis=1)], axis=1)
        return (summed[:, last] - summed[:, first]) / np.maximum(seen_after, 1)[None, :]

    lying = (angle[None, :] >= cue.lying) | short
    stays = (share(gap <= cue.leave) >= cue.stay) & (share(np.broadcast_to(lying, gap.shape)) >= cue.share)
    now = t[-1]
    due = ok & ~up & (t <= now - cue.confirm + 1e-9) & (t >= now - cue.confirm - cue.recent)
    since = t[None, :] - t[:, None]
    falls = up[:, None] & due[None, :] & (since > 0) & (since <= cue.within) & (gap <= cue.floor)
    falls &= lows_before == np.diag(lows)[:, None]  # no pause between u and d
    falls &= out_of_sight[None, :] | stays
    fell = float(t[np.flatnonzero(falls.any(axis=0))[0]]) if falls.any() else None
    return FallReading(fell, bool(up[-1]))


def apply_cue(probs: np.ndarray, label: int, reading: FallReading) -> np.ndarray:
    """A person's class probabilities [C] after the reading: all of it on `label` after a confirmed
    fall, none of it otherwise (the rest keeps its proportions)."""
    if reading.fell is not None:
        return np.eye(len(probs), dtype=probs.dtype)[label]
    rest = probs.copy()
    rest[label] = 0.0
    total = rest.sum()
    return rest / total if total > 0 else np.full_like(probs, 1.0 / max(len(probs) - 1, 1)) * (np.arange(len(probs)) != label)
