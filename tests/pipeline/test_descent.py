"""The fall read from geometry (`pipeline.descent`): hand-built skeletons whose torso angle and hip
height are known at every instant, the probabilities it hands on, and a real clip through `run`
with models edited to be wrong, so that only the cue can make them right."""

import numpy as np
import pytest
import torch

from actionlstm.builtin import builtin_path
from actionlstm.checkpoint import load_checkpoint, save_checkpoint
from actionlstm.train import inherited_meta
from pipeline.descent import DescentCue, apply_cue, descent_cue, read_fall, torso
from tests.helpers import SHARED_DATA, ReplayedPose, detections_of

FPS = 30.0
TORSO = 100.0  # pixels from the hips' middle to the shoulders' middle
CUE = DescentCue("fall")


def person(angles: np.ndarray, hip_y: np.ndarray, seen: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of a person whose torso leans `angles` degrees (towards +x) with the hips at `hip_y`:
    keypoints, scores (shoulders and hips only) and timestamps at FPS."""
    frames = len(angles)
    keypoint = np.zeros((frames, 17, 2), np.float32)
    rad = np.radians(angles)
    for side, (shoulder, hip) in enumerate(((5, 11), (6, 12))):
        x = 300.0 + (10.0 if side else -10.0)
        keypoint[:, hip] = np.stack([np.full(frames, x), hip_y], axis=1)
        keypoint[:, shoulder] = np.stack([x + TORSO * np.sin(rad), hip_y - TORSO * np.cos(rad)], axis=1)
    score = np.zeros((frames, 17), np.float32)
    score[:, [5, 6, 11, 12]] = seen
    return keypoint, score, np.arange(frames) / FPS


def path(*pieces: tuple[float, float, float]) -> np.ndarray:
    """A value held or moved linearly: (seconds, from, to) pieces, sampled at FPS."""
    return np.concatenate([np.linspace(a, b, int(round(seconds * FPS)), endpoint=False) for seconds, a, b in pieces])


def verdicts(keypoint: np.ndarray, score: np.ndarray, timestamp: np.ndarray, at: list[float]) -> list[bool | None]:
    """`read_fall` as the live pipeline would call it with the frames up to each time in `at`."""
    return [read_fall(keypoint[: int(t * FPS) + 1], score[: int(t * FPS) + 1], timestamp[: int(t * FPS) + 1], CUE) for t in at]


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


def test_a_fall_is_read_from_the_moment_the_hips_have_dropped_until_the_cue_runs_out():
    # upright for 1 s; over 0.5 s the torso tips to 80 degrees and the hips drop one torso; then lying
    angles = path((1.0, 0, 0), (0.5, 0, 80), (4.0, 80, 80))
    hips = path((1.0, 300, 300), (0.5, 300, 400), (4.0, 400, 400))
    frames = person(angles, hips)
    # tilt 25 degrees at 1.16 s, hips half a torso lower at 1.25 s; the last upright (<= 40 degree)
    # frame is at 1.25 s, so a frame down counts until 2.75 s and the cue holds to 4.75 s
    assert verdicts(*frames, [0.9, 1.2, 1.3, 2.0, 4.6, 4.9]) == [False, None, True, True, True, None]


def test_sitting_down_bending_over_and_lying_down_slowly_are_not_falls():
    sitting = person(path((1.0, 0, 0), (0.5, 0, 0), (2.0, 0, 0)), path((1.0, 300, 300), (0.5, 300, 420), (2.0, 420, 420)))
    assert set(verdicts(*sitting, [0.5, 1.3, 1.6, 3.0])) == {False}  # upright all along: vetoed, whatever the model says
    bending = person(path((1.0, 0, 0), (0.5, 0, 90), (2.0, 90, 90)), path((3.5, 300, 300)))
    assert verdicts(*bending, [1.3, 1.6, 3.0]) == [None, None, None]  # leant, hips in place: the model's call
    slowly = person(path((1.0, 0, 0), (4.0, 0, 90), (1.0, 90, 90)), path((1.0, 300, 300), (4.0, 300, 400), (1.0, 400, 400)))
    assert True not in verdicts(*slowly, [t / 10 for t in range(5, 60)])  # 1.5 s of it: 34 degrees, 0.38 torso lengths


def test_a_crouch_that_springs_back_is_no_longer_a_fall():
    # 30 degrees and 0.6 torso lengths down in 0.4 s, as in a fall, then up again within 0.4 s
    crouch = person(
        path((1.0, 0, 0), (0.4, 0, 30), (0.4, 30, 0), (1.0, 0, 0)), path((1.0, 300, 300), (0.4, 300, 360), (0.4, 360, 300), (1.0, 300, 300))
    )
    assert verdicts(*crouch, [1.4, 1.8, 2.5]) == [True, None, None]  # down: a fall as far as anyone can tell; up: not


def test_a_torso_lost_on_the_way_down_is_not_called_upright():
    # upright for 2 s, then the pose model scores the shoulders and hips below min_score as the person goes down
    keypoint, score, timestamp = person(
        path((2.0, 0, 0), (0.5, 0, 80), (1.0, 80, 80)), path((2.0, 300, 300), (0.5, 300, 400), (1.0, 400, 400))
    )
    score[int(2.0 * FPS) :] = 0.25
    assert read_fall(keypoint, score, timestamp, CUE) is None  # the frames seen were upright, but the person is not seen now
    assert read_fall(keypoint[: int(2.0 * FPS)], score[: int(2.0 * FPS)], timestamp[: int(2.0 * FPS)], CUE) is False


def test_unseen_torso_leaves_it_to_the_model():
    keypoint, score, timestamp = person(
        path((1.0, 0, 0), (0.5, 0, 80), (1.0, 80, 80)), path((1.0, 300, 300), (0.5, 300, 400), (1.0, 400, 400))
    )
    assert read_fall(keypoint, score * 0.0, timestamp, CUE) is None
    assert read_fall(keypoint, np.full_like(score, CUE.min_score), timestamp, CUE) is None  # at the threshold: not seen
    assert read_fall(keypoint[:0], score[:0], timestamp[:0], CUE) is None
    point = keypoint.copy()
    point[:, [5, 6]] = point[:, [11, 12]]  # shoulders on the hips: no direction, not a torso tipped over
    assert read_fall(point, score, timestamp, CUE) is None


def test_non_finite_keypoints_are_unseen_joints_and_raise_no_warning():
    keypoint, score, timestamp = person(
        path((1.0, 0, 0), (0.5, 0, 80), (1.0, 80, 80)), path((1.0, 300, 300), (0.5, 300, 400), (1.0, 400, 400))
    )
    keypoint[:, 5] = np.nan  # one shoulder never placed: the other one carries the torso
    keypoint[:, 0] = np.inf  # and a joint the cue does not use
    with np.errstate(all="raise"):
        assert read_fall(keypoint, score, timestamp, CUE) is True
        assert read_fall(np.full_like(keypoint, np.nan), score, timestamp, CUE) is None


def test_the_verdict_moves_the_probability_as_said():
    probs = np.array([0.5, 0.3, 0.2], np.float32)
    np.testing.assert_allclose(apply_cue(probs, 0, True), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(apply_cue(probs, 0, False), [0.0, 0.6, 0.4], atol=1e-6)
    np.testing.assert_allclose(apply_cue(probs, 1, False), [0.5 / 0.7, 0.0, 0.2 / 0.7], atol=1e-6)
    assert apply_cue(probs, 0, None) is probs
    np.testing.assert_allclose(apply_cue(np.array([1.0, 0.0, 0.0], np.float32), 0, False), [0.0, 0.5, 0.5])


def test_a_checkpoint_carries_its_cue_for_a_label_it_has():
    classes = ["fall", "lying", "sitting"]
    assert descent_cue({}, classes) is None
    assert descent_cue({"descent": CUE.to_dict()}, ["walk", "run"]) is None  # fine-tuned onto classes without it
    cue, index = descent_cue({"descent": DescentCue("lying", tilt=30.0).to_dict()}, classes)
    assert (cue.label, cue.tilt, index) == ("lying", 30.0, 1)
    later = {**CUE.to_dict(), "knee_angle": 30.0}  # a setting a later version added: left out, the rest read
    assert descent_cue({"descent": later}, classes)[0] == CUE
    assert descent_cue({"descent": None}, classes) is None


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
    """`builtin_falls_biased` saved at `out`, with or without the descent cue."""
    clf = builtin_falls_biased(fall_bias)
    meta = {k: v for k, v in clf.meta.items() if k != "descent"}
    save_checkpoint(out, clf.model, clf.class_names, clf.preprocess, {**meta, **({"descent": CUE.to_dict()} if cue else {})})
    return out


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


@pytest.mark.video
@pytest.mark.parametrize(("clip", "fall_bias"), [("fall/S3_Fall_01.mp4", -50.0), ("adl/S3_ADL_07.mp4", 50.0)])
def test_the_cue_rights_a_model_that_never_or_always_says_fall(clip, fall_bias, tmp_path, single_thread, pose_stage):
    """Real pose on a real fall (the labelled fall starts at 0 s) and on squats (upright all along):
    a model that never says fall catches the fall only with the cue; one that always says fall
    alarms on the squats only without it."""
    video = SHARED_DATA / "falls" / clip
    if not video.exists():
        pytest.skip(f"{video} is not there")
    detections = detections_of(video, pose_stage())  # the clip's real pose, made once for both models
    without = fall_events(video, falls_model_biased(tmp_path / "plain.pth", fall_bias, cue=False), ReplayedPose(detections))
    with_cue = fall_events(video, falls_model_biased(tmp_path / "cue.pth", fall_bias, cue=True), ReplayedPose(detections))
    if fall_bias < 0:
        assert without == [] and len(with_cue) == 1 and 0.0 <= with_cue[0] <= 3.0
    else:
        assert len(without) == 1 and with_cue == []


def test_fine_tuning_keeps_the_cue_and_the_operating_points_of_labels_it_still_has():
    point = {"prob": 0.7, "seconds": 0.5}
    meta = {"alert_defaults": {"fall": point, "wave": point}, "descent": CUE.to_dict(), "epochs": 20}
    assert inherited_meta(meta, ["fall", "sit"]) == {"alert_defaults": {"fall": point}, "descent": CUE.to_dict()}
    assert inherited_meta(meta, ["sit", "wave"]) == {"alert_defaults": {"wave": point}}
    assert inherited_meta({"epochs": 3}, ["fall"]) == {}
    assert inherited_meta({"descent": None}, ["fall"]) == {}


@pytest.mark.parametrize("fps", [30.0, 7.5])
def test_a_descent_counts_at_once_not_averaged_in_at_any_frame_rate(fps):
    """A person upright, then falling: with a model that never says fall, the running average stays
    near 0 until the pass at which the cue first reads a descent, which reads exactly 1 for fall,
    at 30 fps and at 7.5 fps alike (an average would need several passes to get there)."""
    from pipeline.actions import ActionRuntime
    from pipeline.buffers import TrackBuffers

    clf = builtin_falls_biased(-50.0)
    keypoint, score, _ = person(path((1.5, 0, 0), (0.5, 0, 80), (1.0, 80, 80)), path((1.5, 300, 300), (0.5, 300, 420), (1.0, 420, 420)))
    step = int(round(FPS / fps))
    keypoint, score = keypoint[::step], score[::step]
    buffers = TrackBuffers(clf.preprocess, fps, (480, 640))
    runtime = ActionRuntime(clf, torch.device("cpu"), smoothing=0.6, top_k=len(clf.class_names))
    readings = []
    for t in range(len(keypoint)):
        buffers.update(t / fps, np.array([1]), keypoint[t : t + 1], score[t : t + 1])
        labels = runtime.update(buffers, {1})
        if 1 in labels:
            descent = read_fall(*buffers[1].frames(), runtime.descent[0])  # the cue the checkpoint carries
            readings.append((descent, next(item.prob for item in labels[1] if item.label == "fall")))
    first = next(i for i, (descent, _) in enumerate(readings) if descent)
    assert first > 0 and all(prob < 0.01 for _, prob in readings[:first])
    assert readings[first][1] == pytest.approx(1.0, abs=1e-6)
