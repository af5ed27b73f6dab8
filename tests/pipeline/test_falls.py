"""The fall read from geometry (`pipeline.falls`): hand-built skeletons whose torso angle, hip height
and ankles are known at every instant (falls, sits onto a sofa, lying down on a bed, getting down onto
the floor on purpose, squats), the probabilities it hands on, the down state, and real clips through
`run` with models edited to be wrong, so that only the cue can make them right."""

import csv

import numpy as np
import pytest
import torch

from actionlstm.builtin import builtin_path
from actionlstm.checkpoint import load_checkpoint, save_checkpoint
from actionlstm.train import inherited_meta
from pipeline.falls import FallCue, FallReading, apply_cue, fall_cue, read_fall, torso
from tests.helpers import ROOT, SHARED_DATA, ReplayedPose

FPS = 30.0
TORSO = 100.0  # pixels from the hips' middle to the shoulders' middle, upright
FLOOR = 450.0  # pixel y of the ankles while standing: 1.5 torso lengths under the hips
CUE = FallCue("fall")


def person(angles: np.ndarray, hip_y: np.ndarray, seen: float = 0.9, feet: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of a person whose torso leans `angles` degrees (towards +x) with the hips at `hip_y` and
    the ankles on the floor (seen when `feet`): keypoints, scores (shoulders, hips, ankles) and
    timestamps at FPS."""
    frames = len(angles)
    keypoint = np.zeros((frames, 17, 2), np.float32)
    rad = np.radians(angles)
    for side, (shoulder, hip, ankle) in enumerate(((5, 11, 15), (6, 12, 16))):
        x = 300.0 + (10.0 if side else -10.0)
        keypoint[:, hip] = np.stack([np.full(frames, x), hip_y], axis=1)
        keypoint[:, shoulder] = np.stack([x + TORSO * np.sin(rad), hip_y - TORSO * np.cos(rad)], axis=1)
        keypoint[:, ankle] = [x, FLOOR]
    score = np.zeros((frames, 17), np.float32)
    score[:, [5, 6, 11, 12]] = seen
    if feet:
        score[:, [15, 16]] = seen
    return keypoint, score, np.arange(frames) / FPS


def path(*pieces: tuple[float, float, float]) -> np.ndarray:
    """A value held or moved linearly: (seconds, from, to) pieces, sampled at FPS."""
    return np.concatenate([np.linspace(a, b, int(round(seconds * FPS)), endpoint=False) for seconds, a, b in pieces])


def readings(keypoint: np.ndarray, score: np.ndarray, timestamp: np.ndarray, at: list[float], cue: FallCue = CUE) -> list[FallReading]:
    """`read_fall` as the live pipeline calls it, with the frames up to each time in `at`."""
    return [read_fall(keypoint[: int(t * FPS) + 1], score[: int(t * FPS) + 1], timestamp[: int(t * FPS) + 1], cue) for t in at]


def fell(frames: tuple, at: list[float]) -> list[float | None]:
    return [None if r.fell is None else round(r.fell, 2) for r in readings(*frames, at)]


def ever_fell(frames: tuple) -> bool:
    return any(r.fell is not None for r in readings(*frames, [t / 10 for t in range(1, int(len(frames[2]) / FPS * 10))]))


# Upright for 1 s; in 0.5 s the torso tips to 85 degrees and the hips drop to 0.2 torso lengths over the floor.
FALL = (path((1.0, 0, 0), (0.5, 0, 85), (5.0, 85, 85)), path((1.0, 300, 300), (0.5, 300, 430), (5.0, 430, 430)))


def test_torso_angle_hips_and_length_are_measured_from_the_seen_joints():
    keypoint, score, _ = person(np.array([0.0, 90.0, 45.0]), np.array([300.0, 350.0, 400.0]))
    score[2, 5] = 0.0  # one shoulder missing: the other one alone (10 px right of the middle) makes that end
    angle, hip_y, length, ok = torso(keypoint, score, CUE.min_score)
    lean = np.radians(45.0)
    np.testing.assert_allclose(angle, [0.0, 90.0, np.degrees(np.arctan2(10 + TORSO * np.sin(lean), TORSO * np.cos(lean)))], atol=1e-4)
    np.testing.assert_allclose(hip_y, [300.0, 350.0, 400.0])
    np.testing.assert_allclose(length[:2], [TORSO, TORSO], atol=1e-4)
    assert ok.all()
    score[1, [11, 12]] = 0.0  # no hip seen: that frame says nothing
    assert torso(keypoint, score, CUE.min_score)[3].tolist() == [True, False, True]
    keypoint[0, 5] = np.nan  # a joint with no place is not seen, however it is scored
    angle, _, _, ok = torso(keypoint, score, CUE.min_score)
    assert ok[0] and np.isfinite(angle[0]) and abs(angle[0] - np.degrees(np.arctan2(10, TORSO))) < 1e-4


def test_a_fall_is_confirmed_a_second_after_the_floor_and_held_for_recent_seconds():
    frames = person(*FALL)
    # the hips are 0.7 torso lengths over the floor (the cue's `floor`) at 1.0 + 0.5 * 80 / 130 = 1.31 s,
    # the first frame on the floor at 1.333 s: confirmed `confirm` (1 s) later; the last frame up is
    # at 1.23 s, so frames on the floor count until 2.73 s (`within`), and the reading holds `recent`
    # (2 s) after the last of them is confirmed
    assert fell(frames, [0.9, 1.5, 2.3, 2.4, 4.3]) == [None, None, None, 1.33, 1.33]
    assert fell(frames, [5.6, 5.9]) != [None, None] and fell(frames, [5.9]) == [None]
    assert [r.up for r in readings(*frames, [0.9, 1.2, 1.3, 2.4])] == [True, True, False, False]


def test_a_fall_without_ankles_in_sight_takes_the_floor_from_the_legs_length():
    assert fell(person(*FALL, feet=False), [2.4]) == [1.33]


def test_sitting_onto_a_sofa_and_lying_down_on_a_bed_are_not_falls():
    # the seat and the bed are 0.9 torso lengths over the floor: the hips never get within `floor` of it
    sit = person(path((1.0, 0, 0), (0.6, 0, 10), (3.0, 10, 10)), path((1.0, 300, 300), (0.6, 300, 360), (3.0, 360, 360)))
    assert not ever_fell(sit) and readings(*sit, [4.0])[0].up  # seated: still up
    bed = person(path((1.0, 0, 0), (0.6, 0, 88), (3.0, 88, 88)), path((1.0, 300, 300), (0.6, 300, 360), (3.0, 360, 360)))
    assert not ever_fell(bed)
    onto = person(  # a quick sit on the bed's edge, then lying back on it: up on the seat, then lying above the floor
        path((1.0, 0, 0), (0.4, 0, 20), (0.5, 20, 20), (0.4, 20, 88), (3.0, 88, 88)),
        path((1.0, 300, 300), (0.4, 300, 360), (0.5, 360, 360), (0.4, 360, 370), (3.0, 370, 370)),
    )
    assert not ever_fell(onto)


def test_getting_down_onto_the_floor_on_purpose_is_not_a_fall():
    # kneel (upright, hips low) for 0.5 s on the way, then lie down: the pause says it was meant
    kneel = person(
        path((1.0, 0, 0), (0.5, 0, 10), (0.5, 10, 10), (0.5, 10, 85), (3.0, 85, 85)),
        path((1.0, 300, 300), (0.5, 300, 380), (0.5, 380, 380), (0.5, 380, 430), (3.0, 430, 430)),
    )
    assert not ever_fell(kneel)
    # the same without the pause is a fall: the pause is what tells them apart
    straight = person(path((1.0, 0, 0), (0.6, 0, 85), (3.0, 85, 85)), path((1.0, 300, 300), (0.6, 300, 430), (3.0, 430, 430)))
    assert ever_fell(straight)


def test_a_squat_or_a_sit_on_the_floor_that_sits_up_is_no_fall():
    squat = person(  # hips to the floor fast, torso upright, up again: never lying
        path((1.0, 0, 0), (0.4, 0, 30), (0.4, 30, 30), (0.4, 30, 0), (2.0, 0, 0)),
        path((1.0, 300, 300), (0.4, 300, 420), (0.4, 420, 420), (0.4, 420, 300), (2.0, 300, 300)),
    )
    assert not ever_fell(squat)
    stumble = person(  # down onto the floor, and back up within the second that confirms
        path((1.0, 0, 0), (0.5, 0, 85), (0.3, 85, 85), (0.5, 85, 0), (2.0, 0, 0)),
        path((1.0, 300, 300), (0.5, 300, 430), (0.3, 430, 430), (0.5, 430, 300), (2.0, 300, 300)),
    )
    assert not ever_fell(stumble)


def test_a_person_lost_on_the_floor_is_a_fall_but_one_never_seen_down_is_not():
    keypoint, score, timestamp = person(*FALL)
    score[int(1.5 * FPS) :] = 0.0  # the pose model loses them once they are down
    assert fell((keypoint, score, timestamp), [2.6]) == [1.33]
    keypoint, score, timestamp = person(*FALL)
    score[int(1.2 * FPS) :] = 0.0  # lost before the floor: no frame on the floor, nothing to confirm
    assert fell((keypoint, score, timestamp), [2.6, 3.5]) == [None, None]


def test_lying_along_the_cameras_axis_counts_as_lying():
    # the torso stays near vertical in the picture but is seen at a third of its length: pointing at the camera
    keypoint, score, timestamp = person(path((1.0, 0, 0), (0.5, 0, 20), (3.0, 20, 20)), FALL[1][: int(4.5 * FPS)])
    down = timestamp >= 1.5
    middle = (keypoint[:, [11]] + keypoint[:, [12]]) / 2
    keypoint[np.ix_(down, [5, 6])] = middle[down] + (keypoint[np.ix_(down, [5, 6])] - middle[down]) * 0.3
    assert ever_fell((keypoint, score, timestamp))
    sitting = person(path((1.0, 0, 0), (0.5, 0, 20), (3.0, 20, 20)), FALL[1][: int(4.5 * FPS)])
    assert not ever_fell(sitting)  # the same at full length: upright on the floor, sitting


def test_unseen_torsos_and_non_finite_keypoints_read_nothing_and_raise_no_warning():
    keypoint, score, timestamp = person(*FALL)
    assert read_fall(keypoint, score * 0.0, timestamp, CUE) == FallReading(None, False)
    assert read_fall(keypoint, np.full_like(score, CUE.min_score), timestamp, CUE).fell is None  # at the threshold: not seen
    assert read_fall(keypoint[:0], score[:0], timestamp[:0], CUE) == FallReading(None, False)
    point = keypoint.copy()
    point[:, [5, 6]] = point[:, [11, 12]]  # shoulders on the hips: no torso
    assert read_fall(point, score, timestamp, CUE) == FallReading(None, False)
    keypoint[:, 5] = np.nan  # one shoulder never placed: the other one carries the torso
    keypoint[:, 0] = np.inf  # and a joint the cue does not use
    with np.errstate(all="raise"):
        assert read_fall(keypoint[: int(2.4 * FPS)], score[: int(2.4 * FPS)], timestamp[: int(2.4 * FPS)], CUE).fell is not None
        assert read_fall(np.full_like(keypoint, np.nan), score, timestamp, CUE) == FallReading(None, False)


@pytest.mark.parametrize("fps", [30.0, 10.0, 7.5])
def test_the_fall_is_read_at_any_frame_rate(fps):
    keypoint, score, timestamp = person(*FALL)
    step = int(round(FPS / fps))
    at = timestamp[::step]
    end = int(np.searchsorted(at, 2.6))
    reading = read_fall(keypoint[::step][:end], score[::step][:end], at[:end], CUE)
    assert reading.fell is not None and 1.3 <= reading.fell <= 1.45


def test_the_reading_moves_the_probability_as_said():
    probs = np.array([0.5, 0.3, 0.2], np.float32)
    np.testing.assert_allclose(apply_cue(probs, 0, FallReading(1.0, False)), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(apply_cue(probs, 0, FallReading(None, True)), [0.0, 0.6, 0.4], atol=1e-6)
    np.testing.assert_allclose(apply_cue(probs, 1, FallReading(None, False)), [0.5 / 0.7, 0.0, 0.2 / 0.7], atol=1e-6)
    np.testing.assert_allclose(apply_cue(np.array([1.0, 0.0, 0.0], np.float32), 0, FallReading(None, False)), [0.0, 0.5, 0.5])


def test_a_checkpoint_carries_its_cue_for_a_label_it_has_and_the_earlier_cue_becomes_this_one():
    classes = ["fall", "lying", "sitting"]
    assert fall_cue({}, classes) is None
    assert fall_cue({"fall": CUE.to_dict()}, ["walk", "run"]) is None  # fine-tuned onto classes without it
    cue, index = fall_cue({"fall": FallCue("lying", confirm=2.0).to_dict()}, classes)
    assert (cue.label, cue.confirm, index) == ("lying", 2.0, 1)
    later = {**CUE.to_dict(), "knee_angle": 30.0}  # a setting a later version added: left out, the rest read
    assert fall_cue({"fall": later}, classes)[0] == CUE
    assert fall_cue({"descent": {"label": "fall", "tilt": 25.0, "drop": 0.5}}, classes) == (CUE, 0)  # the earlier cue's checkpoints
    assert fall_cue({"fall": None}, classes) is None


def test_fine_tuning_keeps_the_cue_and_the_operating_points_of_labels_it_still_has():
    point = {"prob": 0.7, "seconds": 0.0}
    meta = {"alert_defaults": {"fall": point, "wave": point}, "fall": CUE.to_dict(), "epochs": 20}
    assert inherited_meta(meta, ["fall", "sit"]) == {"alert_defaults": {"fall": point}, "fall": CUE.to_dict()}
    assert inherited_meta(meta, ["sit", "wave"]) == {"alert_defaults": {"wave": point}}
    assert inherited_meta({"epochs": 3}, ["fall"]) == {}
    assert inherited_meta({"fall": None}, ["fall"]) == {}


def builtin_falls_biased(fall_bias: float):
    """The built-in fall model with its `fall` logit pushed by `fall_bias` in every member: a model
    that always, or never, says fall."""
    clf = load_checkpoint(builtin_path("falls"))
    fall = clf.class_names.index("fall")
    with torch.no_grad():
        for member in clf.model.members:
            member.head[1].bias[fall] += fall_bias
    return clf


def falls_model_biased(out, fall_bias: float, cue: bool):
    """`builtin_falls_biased` saved at `out`, with or without the fall cue."""
    clf = builtin_falls_biased(fall_bias)
    meta = {k: v for k, v in clf.meta.items() if k not in ("fall", "descent")}
    save_checkpoint(out, clf.model, clf.class_names, clf.preprocess, {**meta, **({"fall": CUE.to_dict()} if cue else {})})
    return out


def test_the_runtime_keeps_the_down_state_until_the_person_is_up_again():
    """A fall, three seconds on the floor, then up: through the runtime (`pipeline.replay`), the fall
    label reads 1 from the confirmation on, `down` counts the seconds since the floor and ends once
    the person stands."""
    from pipeline.actions import ActionRuntime
    from pipeline.replay import replay

    angles = np.concatenate([FALL[0][: int(4.5 * FPS)], path((0.5, 85, 0), (1.5, 0, 0))])
    hips = np.concatenate([FALL[1][: int(4.5 * FPS)], path((0.5, 430, 300), (1.5, 300, 300))])
    keypoint, score, _ = person(angles, hips)
    runtime = ActionRuntime(builtin_falls_biased(-50.0), torch.device("cpu"), top_k=5)
    results = list(replay(runtime, keypoint[None], score[None], FPS, (480, 640)))
    down = {round(r.time, 2): r.persons[0].down for r in results if r.persons}
    prob = {round(r.time, 2): {p.label: p.prob for p in r.persons[0].top5 or []}.get("fall") for r in results if r.persons}
    assert down[2.2] is None and prob[2.2] is not None and prob[2.2] < 0.01  # before the confirmation: the model, which never says fall
    assert down[2.5] == pytest.approx(2.5 - 1.333, abs=0.05) and prob[2.5] == pytest.approx(1.0)
    assert down[4.4] == pytest.approx(4.4 - 1.333, abs=0.05)
    assert down[5.9] is None  # standing again


def fall_events(video, checkpoint, pose) -> list[float]:
    """The times of the events `run VIDEO --checkpoint CKPT --alert fall --events FILE` writes, from the
    stages `run` builds, with `pose` for its pose stage."""
    from pipeline.actions import ActionRuntime
    from pipeline.alerts import Alerts
    from pipeline.predictor import ActionPipeline
    from pipeline.rules import check_rules, parse_rule
    from pipeline.sources import open_source
    from pipeline.tracking import Tracker

    clf = load_checkpoint(checkpoint)
    alerts = Alerts(check_rules([parse_rule("fall")], clf.class_names, clf.alert_defaults))  # the model's own operating point
    pipeline = ActionPipeline(pose, Tracker(), ActionRuntime(clf, torch.device("cpu")))
    with open_source(str(video)) as source:
        return [round(event.time, 4) for result in pipeline.stream(source) for event in alerts.update(result)]


def floor_time(clip: str) -> float:
    """When the clip first shows the person on the floor (read by hand: scripts/falls_floor.csv)."""
    with open(ROOT / "scripts" / "falls_floor.csv") as rows:
        return next(
            float(row["floor_seconds"]) for row in csv.DictReader(line for line in rows if not line.startswith("#")) if row["clip"] == clip
        )


@pytest.mark.video
@pytest.mark.parametrize(("clip", "fall_bias"), [("fall/S3_Fall_01.mp4", -50.0), ("adl/S3_ADL_07.mp4", 50.0)])
def test_the_cue_rights_a_model_that_never_or_always_says_fall(clip, fall_bias, tmp_path, single_thread, gmdcsa_detections):
    """Real pose on a real fall and on squats: a model that never says fall catches the fall only
    with the cue, within 2 s of the person reaching the floor; one that always says fall alarms on
    the squats only without it."""
    video = SHARED_DATA / "falls" / clip
    detections = gmdcsa_detections(clip)  # the clip's real pose, made once for both models (and tests/pipeline/test_zones.py)
    without = fall_events(video, falls_model_biased(tmp_path / "plain.pth", fall_bias, cue=False), ReplayedPose(detections))
    with_cue = fall_events(video, falls_model_biased(tmp_path / "cue.pth", fall_bias, cue=True), ReplayedPose(detections))
    if fall_bias < 0:
        assert without == [] and len(with_cue) == 1
        assert 0.0 <= with_cue[0] - floor_time(video.stem) <= 2.0
    else:
        assert len(without) == 1 and with_cue == []
