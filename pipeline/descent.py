"""A fall read from the skeleton's own geometry: within a second or so the torso tips over from
upright while the hips drop.

A model that learnt falls from a few dozen clips reads the falls of people it never saw unevenly: it
misses a fall it has not seen the like of, or one whose descent YOLO-pose tracks for only a few
frames. The geometry of a fall is the same for everyone and needs no training. Sitting down drops the
hips with the torso upright; bending over tips the torso with the hips in place; lying down on
purpose goes by sitting first, so the hips barely drop once the torso tips. Only a fall does both at
once. Measured on GMDCSA24's 23 clips (on their own, no model): 12 of 14 falls, none of 9 daily
activities; the thresholds sit in a plateau (tilt 20-25 degrees, drop 0.4-0.7 torso lengths, 1.5-2 s)
where that holds, and a quick sit on a bed (tilt 24, drop 0.47) is the nearest daily activity.

A checkpoint carries such a cue for one of its labels in `meta["descent"]` (the built-in `falls`
does, see scripts/train_builtin.py). The live classifier (`pipeline.actions.ActionRuntime`) then
gives that label all the probability for a person whose buffered frames show a descent that ended
within the last `recent` seconds, and none of it to a person whose torso stayed upright all along
(squats read as a fall by the model: the one false alarm of its leave-one-subject-out runs). The
label still means what the model learnt (someone falling or just fallen), now also for falls the
model alone would miss. Clip-level `evaluate` reads the model alone.
"""

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 5, 6, 11, 12
MIN_TORSO_PIXELS = 2.0  # shoulders and hips closer than this point nowhere: that frame shows no torso
# The upright verdict needs the torso seen in this share of the span's frames and in its last
# SEEN_LATELY seconds: a person whose torso the pose model loses as they go down (low scores when
# lying are common) must not be called upright from the frames before.
SEEN_SHARE = 0.5
SEEN_LATELY = 0.5


@dataclass(frozen=True)
class DescentCue:
    label: str  # the class a descent is read as
    within: float = 1.5  # seconds from the last upright frame to the frame that is down
    recent: float = 2.0  # seconds the cue holds after that frame (an alert needs it held a while)
    upright: float = 40.0  # degrees from vertical a torso may lean and still count as upright
    tilt: float = 25.0  # degrees the torso tips over from there ...
    drop: float = 0.5  # ... while the hips drop this many torso lengths (measured when upright)
    min_score: float = 0.3  # joints scored at or below this are not used
    # A fall tips the torso: someone seen with it within this many degrees of vertical throughout the
    # last `within + recent` seconds is not falling, whatever the model reads (squats, sitting down).
    lean: float = 20.0
    # The span the cue reads (`within + recent`, 3.5 s) must fit in the person's buffer, which holds
    # one model window (4.8 s for the falls model): a shorter buffer would shorten `recent` unseen.

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def descent_cue(meta: dict[str, Any], class_names: list[str]) -> tuple[DescentCue, int] | None:
    """The cue a checkpoint's `meta` carries and the index of its label, or None when it has none
    (or names a label the model does not have, as after fine-tuning onto other classes)."""
    settings = meta.get("descent") or {}
    if "label" not in settings:
        return None
    known = {f.name for f in fields(DescentCue)}
    cue = DescentCue(**{k: v for k, v in settings.items() if k in known})  # settings a later version added are left out
    return (cue, class_names.index(cue.label)) if cue.label in class_names else None


def torso(keypoint: np.ndarray, score: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame of [T, 17, 2] keypoints and [T, 17] scores: the torso's angle from the image's
    vertical in degrees (0 upright, 90 lying, more head down), the hips' height (pixel y, growing
    downwards), the torso's length in pixels, and whether a shoulder and a hip are seen (the rest
    is meaningless where not, as where the two ends nearly meet). Each end is the mean of its seen
    joints of the pair; a joint with non-finite coordinates is not seen."""

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
    return angle, hips[:, 1], length, shoulders_seen & hips_seen & (length >= MIN_TORSO_PIXELS)


def read_fall(keypoint: np.ndarray, score: np.ndarray, timestamp: np.ndarray, cue: DescentCue) -> bool | None:
    """What a person's frames (oldest first, as `PersonBuffer.frames` gives them) say of a fall:
    True when they hold a descent that ended within `cue.recent` seconds of the newest frame (a frame
    whose torso leans at least `cue.tilt` degrees more, and whose hips sit at least `cue.drop` torso
    lengths lower, than in an upright frame at most `cue.within` seconds before it) and the hips
    of the newest frame that shows the torso are still that low (a crouch that springs back is no
    fall; a fallen person may lie at any angle to the camera); False
    when the torso was seen throughout that span (SEEN_SHARE, SEEN_LATELY) and never leant
    `cue.lean` degrees; None when they cannot tell: leave it to the model."""
    if not len(timestamp):
        return None
    keep = timestamp >= timestamp[-1] - cue.recent - cue.within
    angle, hip_y, length, ok = torso(keypoint[keep], score[keep], cue.min_score)
    if not ok.any():
        return None
    t = timestamp[keep]
    start = ok & (angle <= cue.upright)  # rows: the upright frame
    end = ok & (t >= t[-1] - cue.recent)  # columns: the frame that is down
    gap = t[None, :] - t[:, None]
    tipped = angle[None, :] - angle[:, None] >= cue.tilt
    dropped = hip_y[None, :] - hip_y[:, None] >= cue.drop * length[:, None]
    descent = start[:, None] & end[None, :] & (gap > 0) & (gap <= cue.within) & tipped & dropped
    rows = np.flatnonzero(descent.any(axis=1))  # upright frames a descent started from
    if len(rows) and (hip_y[ok][-1] - hip_y[rows] >= cue.drop * length[rows]).any():
        return True
    if ok.mean() >= SEEN_SHARE and ok[t >= t[-1] - SEEN_LATELY].any() and angle[ok].max() < cue.lean:
        return False
    return None


def apply_cue(probs: np.ndarray, label: int, verdict: bool | None) -> np.ndarray:
    """A person's class probabilities [C] after `read_fall`'s verdict: all of it on `label` for a
    descent, none of it for a torso that stayed upright (the rest keeps its proportions), as the
    model gave them otherwise."""
    if verdict is None:
        return probs
    if verdict:
        return np.eye(len(probs), dtype=probs.dtype)[label]
    rest = probs.copy()
    rest[label] = 0.0
    total = rest.sum()
    return rest / total if total > 0 else np.full_like(probs, 1.0 / max(len(probs) - 1, 1)) * (np.arange(len(probs)) != label)
