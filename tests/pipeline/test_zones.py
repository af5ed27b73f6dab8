"""Zones and the down rule (`pipeline.zones`, `pipeline.rules`, `pipeline.alerts`): their syntax and
files, the point-in-polygon test, the episode logic on frames with hand-set boxes and down times, and
bad zones through the real `actionlstm run`. On real video (one pose run of a GMDCSA24 fall and one of
its squats, shared with tests/pipeline/test_falls.py): a zone where the person falls keeps the fall
quiet and one on the bed does not, and the down rule fires after its seconds on the floor, on the fall only."""

import json

import numpy as np
import pytest
import torch

from actionlstm.errors import UserError
from pipeline.actions import LabelProb
from pipeline.alerts import Alerts
from pipeline.predictor import FrameResult, PersonResult
from pipeline.rules import AlertRule, check_rules, load_rules, parse_rule
from pipeline.zones import Zone, check_zones, inside, load_zones, parse_zone
from tests.helpers import SHARED_DATA, assert_user_error, run_cli

SIZE = (640, 480)
BED = "bed=fall,down:0.5,0.5 1,0.5 1,1 0.5,1"  # the frame's lower right quarter


# --- syntax ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        (BED, Zone("bed", ("fall", "down"), ((0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)))),
        ("cam-2/sofa=*:10,20 300,20 300,400", Zone("sofa", ("*",), ((10.0, 20.0), (300.0, 20.0), (300.0, 400.0)), "cam-2")),
        ("  big bed = fall : 0,0  1,0 \t 0,1 ", Zone("big bed", ("fall",), ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)))),
    ],
)
def test_zone_syntax(text, zone):
    assert parse_zone(text) == zone
    assert parse_zone(str(zone)) == zone  # what a zone says of itself reads back as the same zone


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("bed=fall:0,0 1,1", "3 points or more, not 2"),
        ("bed=fall:", "3 points or more, not 0"),
        ("bed=fall:0,0 1,x 1,1", "'x' is not a number"),
        ("bed=fall:0,0 1 1,1", "'1' is not one X,Y point"),
        ("bed=fall:0,0 1,0,2 1,1", "'1,0,2' is not one X,Y point"),
        ("bed=fall:0,0 -1,0 1,1", "0 or more"),
        ("bed=fall:0,0 nan,0 1,1", "0 or more"),
        ("bed:0,0 1,0 1,1", "is not [SOURCE/]NAME=LABEL"),
        ("=fall:0,0 1,0 1,1", "is not [SOURCE/]NAME=LABEL"),
        ("bed=fall,:0,0 1,0 1,1", "name the labels"),
        ("a b/bed=fall:0,0 1,0 1,1", "is not [SOURCE/]NAME=LABEL"),
    ],
)
def test_bad_zones_are_refused_in_one_line(text, fragment):
    with pytest.raises(UserError) as error:
        parse_zone(text)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_zones_files_yaml_and_toml_beside_the_rules(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "alerts: [fall, 'down:20']\nzones:\n  - name: bed\n    source: bedroom\n    labels: [fall, down]\n"
        "    points: [[0.1, 0.5], [0.6, 0.5], [0.6, 0.9]]\n  - 'sofa=fall:0,0 10,0 10,10'\n"
    )
    (tmp_path / "r.toml").write_text('alerts = ["fall"]\n\n[[zones]]\nname = "bed"\nlabels = "fall"\npoints = [[0, 0], [1, 0], [1, 1]]\n')
    assert load_rules(tmp_path / "r.yaml") == [AlertRule("fall"), AlertRule("down", None, 20.0)]
    assert load_zones(tmp_path / "r.yaml") == [
        Zone("bed", ("fall", "down"), ((0.1, 0.5), (0.6, 0.5), (0.6, 0.9)), "bedroom"),
        Zone("sofa", ("fall",), ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0))),
    ]
    assert load_zones(tmp_path / "r.toml") == [Zone("bed", ("fall",), ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)))]
    for name, text, fragment in [
        (
            "key.yaml",
            "alerts: [fall]\nzones:\n  - {name: bed, labels: [fall], points: [[0, 0], [1, 0], [1, 1]], colour: red}\n",
            "unknown key",
        ),
        ("points.yaml", "alerts: [fall]\nzones:\n  - {name: bed, labels: [fall], points: [[0, 0], [1, 0], [1]]}\n", "[x, y] pairs"),
        ("few.yaml", "alerts: [fall]\nzones:\n  - {name: bed, labels: [fall], points: [[0, 0], [1, 0]]}\n", "3 points or more"),
        ("list.toml", 'alerts = ["fall"]\nzones = "bed"\n', "'zones' is a list"),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(UserError) as error:
            load_zones(tmp_path / name)
        assert fragment in str(error.value) and "\n" not in str(error.value), (name, error.value)


def test_down_rule_syntax_default_and_a_model_without_a_down_state():
    assert parse_rule("down:30") == AlertRule("down", None, 30.0)
    assert check_rules([parse_rule("down"), parse_rule("down:5s")], ["fall", "sit"], down=True) == [
        AlertRule("down", 1.0, 30.0),
        AlertRule("down", 1.0, 5.0),
    ]
    assert str(AlertRule("down", 1.0, 5.0)) == "down:5s"  # as events and logs name it
    with pytest.raises(UserError, match="the down state has no probability"):
        parse_rule("down>=0.5:30")
    with pytest.raises(UserError, match="has not"):
        check_rules([parse_rule("down:30")], ["fall", "sit"], down=False)


def test_a_zone_for_a_label_or_source_that_is_not_there_is_refused():
    check_zones([parse_zone(BED), parse_zone("cam/sofa=*:0,0 1,0 1,1")], ["fall", "down"], ["cam", "door"])
    with pytest.raises(UserError, match="no label 'down'"):
        check_zones([parse_zone(BED)], ["fall", "sit"])
    with pytest.raises(UserError, match="no source 'cam'"):
        check_zones([parse_zone("cam/sofa=fall:0,0 1,0 1,1")], sources=["0", "1"])


# --- where a person is ------------------------------------------------------------------------------


def test_point_in_polygon_convex_concave_and_on_the_edge():
    square = [(0, 0), (10, 0), (10, 10), (0, 10)]
    assert inside((5, 5), square) and not inside((15, 5), square) and not inside((5, -1), square)
    assert inside((10, 5), square) and inside((0, 0), square) and inside((5, 10), square)  # the edge is inside
    ell = [(0, 0), (10, 0), (10, 4), (4, 4), (4, 10), (0, 10)]  # an L: its notch is outside
    assert inside((2, 8), ell) and inside((8, 2), ell) and not inside((8, 8), ell) and not inside((5, 5), ell)
    triangle = [(0, 0), (10, 0), (0, 10)]
    assert inside((4.9, 4.9), triangle) and inside((5, 5), triangle) and not inside((5.1, 5.1), triangle)


def test_a_person_is_in_a_zone_by_the_bottom_centre_of_their_box_in_pixels_or_fractions():
    bed = parse_zone(BED)  # fractions: the lower right quarter of any frame
    assert bed.fractions and bed.covers("fall", [400, 100, 600, 300], SIZE)  # feet at (500, 300): 0.78, 0.63
    assert not bed.covers("fall", [400, 100, 600, 200], SIZE)  # feet at 0.42 of the height: over the zone, not in it
    assert not bed.covers("fall", [100, 300, 300, 470], SIZE)  # feet on the left half
    assert bed.covers("fall", [400, 300, 640, 480], SIZE)  # a box at the frame's corner: on the zone's edge, inside
    assert not bed.covers("sit", [400, 100, 600, 300], SIZE)  # a label it does not name
    assert parse_zone(BED).covers("fall", [800, 400, 1000, 700], (1280, 720))  # the same zone at another resolution
    pixels = parse_zone("bed=*:320,240 640,240 640,480 320,480")
    assert not pixels.fractions and pixels.covers("sit", [400, 100, 600, 300], SIZE)
    assert pixels.covers("sit", [400, 100, 600, 300], (1280, 960))  # pixels stay pixels in a bigger frame ...
    assert not bed.covers("fall", [400, 100, 600, 300], (1280, 960))  # ... where fractions grow: (500, 300) is its upper left


# --- the episode logic --------------------------------------------------------------------------------


def person(pid: int, label: str, box: list[float], down: float | None = None) -> PersonResult:
    return PersonResult(pid, box, [LabelProb(label, 0.95), LabelProb("other", 0.05)], down=down)


def fire(alerts: Alerts, frames: list[tuple[float, list[PersonResult], list[PersonResult]]], source: int = 0) -> list:
    """Feed (time, seen, unseen) frames of a SIZE source named 'cam' (source 0) or 'door'; (time, event) per event."""
    name = ["cam", "door"][source]
    return [
        (t, event)
        for t, seen, unseen in frames
        for event in alerts.update(FrameResult(round(t * 10), t, None, seen, 10.0, source=source, unseen=unseen, size=SIZE), name, 0.0)
    ]


IN_BED, ON_FLOOR = [450.0, 150.0, 620.0, 300.0], [50.0, 300.0, 250.0, 470.0]  # feet in BED's quarter, and on the left


def test_a_zone_keeps_its_labels_quiet_where_the_person_is_and_nowhere_else():
    alerts = Alerts(check_rules([parse_rule("fall>=0.8:0.5"), parse_rule("sit:0.5")], ["fall", "sit"]), [parse_zone(BED)])
    in_bed = [(k / 10, [person(1, "fall", IN_BED), person(2, "sit", IN_BED)], []) for k in range(20)]
    assert [(e.person, e.label) for _, e in fire(alerts, in_bed)] == [(2, "sit")]  # fall is the zone's; sit is not
    moved = [(2.0 + k / 10, [person(1, "fall", ON_FLOOR)], []) for k in range(10)]  # out of the zone: held from then on
    assert [(t, e.person, e.label) for t, e in fire(alerts, moved)] == [(2.5, 1, "fall")]
    unseen = [(k / 10, [], [person(3, "fall", IN_BED)]) for k in range(10)]  # out of sight, last seen in bed: still the bed
    assert fire(alerts, unseen) == []


def test_a_zone_for_one_source_leaves_the_others_alone():
    alerts = Alerts(check_rules([parse_rule("fall>=0.8:0.5")], ["fall"]), [parse_zone("door/bed=fall:0.5,0.5 1,0.5 1,1 0.5,1")])
    frames = [(k / 10, [person(1, "fall", IN_BED)], []) for k in range(10)]
    assert [e.source for _, e in fire(alerts, frames, source=0)] == ["cam"]
    assert fire(alerts, frames, source=1) == []


def test_the_down_rule_fires_once_per_fall_after_its_seconds_on_the_floor_seen_or_not():
    alerts = Alerts(check_rules([parse_rule("down:3")], ["fall"], down=True))
    # Reached the floor at 1.0 s; the down state shows from the confirmation (2.0 s), out of sight from 3.5 s, up at 6 s.
    frames = [(k / 10, [person(1, "fall", ON_FLOOR, down=k / 10 - 1.0 if k >= 20 else None)], []) for k in range(35)]
    frames += [(k / 10, [], [person(1, "lie", ON_FLOOR, down=k / 10 - 1.0)]) for k in range(35, 60)]
    frames += [(k / 10, [person(1, "stand", ON_FLOOR)], []) for k in range(60, 70)]
    frames += [(k / 10, [person(1, "fall", ON_FLOOR, down=k / 10 - 7.0)], []) for k in range(70, 110)]  # down again at 7 s
    fired = fire(alerts, frames)
    assert [(t, e.person, e.label, e.duration, e.rule, e.prob) for t, e in fired] == [
        (4.0, 1, "down", 3.0, "down:3s", 1.0),
        (10.0, 1, "down", 3.0, "down:3s", 1.0),
    ]
    assert fired[0][1].start.startswith("1970-01-01") and fired[0][1].start < fired[0][1].at  # when they reached the floor


def test_a_zone_naming_down_keeps_the_down_rule_quiet_there():
    rules = check_rules([parse_rule("down:1")], ["fall"], down=True)
    frames = [(k / 10, [person(1, "fall", IN_BED, down=k / 10)], []) for k in range(20)]
    assert [e.label for _, e in fire(Alerts(rules, [parse_zone("bed=fall:0.5,0.5 1,0.5 1,1 0.5,1")]), frames)] == ["down"]
    assert fire(Alerts(rules, [parse_zone(BED)]), frames) == []


def test_the_down_rule_fires_for_someone_lost_from_sight_on_the_floor():
    """Through the runtime (`pipeline.replay`): a fall, then the pose model loses the person on the
    floor for 10 s. They stay down (DOWN_MEMORY), however soon the tracker lets their id go, and
    `down:6` fires."""
    from actionlstm.builtin import builtin_path
    from actionlstm.checkpoint import load_checkpoint
    from pipeline.actions import ActionRuntime
    from pipeline.replay import replay
    from tests.pipeline.test_falls import FALL, FPS, person

    seen = int(3 * FPS)  # up for 1 s, down by 1.5 s, on the floor and seen until 3 s ...
    angles, hips = (np.concatenate([track[:seen], np.full(int(10 * FPS), track[seen - 1])]) for track in FALL)
    keypoint, score, _ = person(angles, hips)
    score[seen:] = 0.0  # ... then out of sight
    clf = load_checkpoint(builtin_path("falls"))
    runtime = ActionRuntime(clf, torch.device("cpu"))
    rules = check_rules([parse_rule("down:6")], clf.class_names, down=True)
    fired = {}
    for lost_seconds in (12.0, 2.0):
        alerts = Alerts(rules)
        frames = replay(runtime, keypoint[None], score[None], FPS, (480, 640), lost_seconds)
        fired[lost_seconds] = [e for r in frames for e in alerts.update(r, "0", 0.0)]
    for events in fired.values():
        assert [(e.label, e.duration) for e in events] == [("down", pytest.approx(6.0, abs=0.04))]
        assert 1.2 <= events[0].time - 6.0 <= 1.6  # they reached the floor at about 1.4 s


def test_someone_found_again_where_they_lay_stays_down_until_seen_up():
    """A fall, lost from sight for 1 s, then found again lying where they lay under a new id (person 2
    of the clip), who then gets up: the new id carries the down state from the first one's fall until
    it is seen up, and the first id, whose frames still show the fall, is down no more."""
    from actionlstm.builtin import builtin_path
    from actionlstm.checkpoint import load_checkpoint
    from pipeline.actions import ActionRuntime
    from pipeline.replay import replay
    from tests.pipeline.test_falls import FALL, FPS, path, person

    down, lost, found, up = int(3 * FPS), int(1 * FPS), int(2 * FPS), int(3 * FPS)
    lying = [track[down - 1] for track in FALL]
    first = person(*(np.concatenate([track[:down], np.full(lost + found + up, end)]) for track, end in zip(FALL, lying)))
    second = person(
        np.concatenate([np.zeros(down + lost), np.full(found, lying[0]), path((0.5, lying[0], 0), (2.5, 0, 0))]),
        np.concatenate([np.zeros(down + lost), np.full(found, lying[1]), path((0.5, lying[1], 300), (2.5, 300, 300))]),
    )
    keypoint, score = np.stack([first[0], second[0]]), np.stack([first[1], second[1]])
    score[0, down:] = 0.0  # the first id: seen until 3 s
    score[1, : down + lost] = 0.0  # the second: from 4 s
    runtime = ActionRuntime(load_checkpoint(builtin_path("falls")), torch.device("cpu"))
    states = {round(r.time, 2): {p.id: p.down for p in [*r.persons, *r.unseen]} for r in replay(runtime, keypoint, score, FPS, (480, 640))}
    assert states[3.9][1] == pytest.approx(3.9 - 1.33, abs=0.05)  # lost since 3 s, still down
    for t in (4.1, 4.5, 5.5):  # found again: the same fall, one person down
        assert states[t].get(1) is None and states[t][2] == pytest.approx(t - 1.33, abs=0.05)
    assert states[8.9][2] is None  # seen up


# --- bad zones through the command --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--alert", "fall", "--zone", "bed=fall:0,0 1,1"], "3 points or more"),
        (["--alert", "fall", "--zone", "bed=fall:0,0 1,a 1,1"], "'a' is not a number"),
        (["--zone", "bed=fall:0,0 1,0 1,1"], "give the rules"),
        (["--alert", "fall", "--zone", "1/bed=fall:0,0 1,0 1,1"], "no source '1'"),
        (["--alert", "fall", "--zone", "bed=falling:0,0 1,0 1,1"], "no label 'falling'"),
        (["--alert", "down:x"], "'x' is not a number"),
    ],
)
def test_bad_zones_and_down_rules_end_run_with_one_line(args, fragment, single_thread):
    video = SHARED_DATA / "falls" / "fall" / "S3_Fall_01.mp4"
    if not video.exists():
        pytest.skip(f"{video} is not there")
    # --pose-backend torch: nothing exported on a first run, whose progress line would come before the error
    proc = run_cli("run", video, "--checkpoint", "falls", "--pose-backend", "torch", "--no-show", "--device", "cpu", *args)
    assert_user_error(proc, fragment)


def test_the_down_rule_needs_a_model_with_a_fall_cue(trained_checkpoint, short_video, single_thread):
    args = ["--alert", "down:5", "--pose-backend", "torch", "--no-show", "--device", "cpu"]  # torch: no export line before the error
    proc = run_cli("run", short_video, "--checkpoint", trained_checkpoint, *args)
    assert_user_error(proc, "down:5s", "--checkpoint falls")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--alert", "fall", "--zone", "hall/bed=fall:0,0 1,0 1,1"], "no source 'hall'"),
        (["--zone", "room/bed=fall:0,0 1,0 1,1"], "give the rules"),
        (["--alert", "fall", "--zone", "room/bed=fall:0,0 1,0"], "3 points or more"),
    ],
)
def test_bad_zones_end_serve_with_one_line_before_anything_loads(args, fragment, single_thread):
    video = SHARED_DATA / "falls" / "fall" / "S3_Fall_01.mp4"
    if not video.exists():
        pytest.skip(f"{video} is not there")
    proc = run_cli("serve", f"room={video}", "--checkpoint", "falls", "--no-auth", "--port", "0", "--device", "cpu", *args)
    assert_user_error(proc, fragment)


@pytest.mark.video
def test_run_keeps_a_zone_quiet_in_the_source_it_names(trained_checkpoint, short_video, tmp_path, single_thread):
    """`run SRC SRC --zone 1/...`: the same real video side by side, a zone over the whole frame of
    source 1 (a run names its sources by index): any label held 1 s fires in source 0 only."""
    proc = run_cli(
        "run", short_video, short_video, "--checkpoint", trained_checkpoint, "--no-show", "--device", "cpu", "--min-prob", "0",
        "--alert", "*>=0:1s", "--zone", "1/all=*:0,0 1,0 1,1 0,1", "--events", tmp_path / "ev.jsonl",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    fired = [json.loads(line) for line in (tmp_path / "ev.0.jsonl").read_text().splitlines()]
    assert fired and {e["source"] for e in fired} == {"0"}
    assert (tmp_path / "ev.1.jsonl").read_text() == ""


# --- real video ---------------------------------------------------------------------------------------------

FALL, SQUATS = "fall/S3_Fall_01.mp4", "adl/S3_ADL_07.mp4"  # GMDCSA24: off the bed onto the mat on the floor; squats
RULES = ["fall", "down:2"]
MAT = "mat=fall,down:0,0.75 1,0.75 1,1 0,1"  # the floor in front of the bed, where the person falls: the frame's lowest quarter
ON_THE_BED = "bed=fall,down:0.22,0.35 0.68,0.35 0.68,0.7 0.22,0.7"  # the bed they sat on before falling off it


def alert_runs(detections: list, video, zone_sets: dict[str, list[str]]) -> tuple[dict[str, list], list[FrameResult]]:
    """One pass of the built-in `falls` model over `video` with the stages `run` builds (tracker,
    buffers, fall cue), from real detections, and an alert engine with RULES per entry of `zone_sets`
    (name -> zones), all watching the same frames: their events, and the frames (without images)."""
    from dataclasses import replace

    from actionlstm.builtin import builtin_path
    from actionlstm.checkpoint import load_checkpoint
    from pipeline.actions import ActionRuntime
    from pipeline.predictor import ActionPipeline
    from pipeline.sources import open_source
    from pipeline.tracking import Tracker
    from tests.helpers import ReplayedPose

    clf = load_checkpoint(builtin_path("falls"))
    runtime = ActionRuntime(clf, torch.device("cpu"))
    rules = check_rules([parse_rule(rule) for rule in RULES], clf.class_names, clf.alert_defaults, down=runtime.fall is not None)
    engines = {name: Alerts(rules, [parse_zone(zone) for zone in zones]) for name, zones in zone_sets.items()}
    fired: dict[str, list] = {name: [] for name in zone_sets}
    frames = []
    with open_source(str(video)) as source:
        for result in ActionPipeline(ReplayedPose(detections), Tracker(), runtime).stream(source):
            for name, alerts in engines.items():
                fired[name] += alerts.update(result, "0", 0.0)
            frames.append(replace(result, image=None))
    return fired, frames


def clip(name: str):
    video = SHARED_DATA / "falls" / name
    if not video.exists():
        pytest.skip(f"{video} is not there")
    return video


@pytest.fixture(scope="module")
def fall_run(gmdcsa_detections):
    """The fall clip's one pass, with no zone, a zone on the mat and a zone on the bed."""
    video = clip(FALL)
    return alert_runs(gmdcsa_detections(FALL), video, {"none": [], "mat": [MAT], "bed": [ON_THE_BED]})


@pytest.mark.video
def test_a_zone_where_the_person_falls_keeps_the_fall_quiet_and_one_on_the_bed_does_not(fall_run):
    from tests.pipeline.test_falls import floor_time

    fired, frames = fall_run
    falls = [e for e in fired["none"] if e.label == "fall"]
    assert len(falls) == 1 and 0.0 <= falls[0].time - floor_time("S3_Fall_01") <= 2.0
    assert fired["mat"] == []  # neither the fall nor the time down: the mat's labels
    assert [(e.label, e.time) for e in fired["bed"]] == [(e.label, e.time) for e in fired["none"]]  # they fell off the bed, not on it
    fired_on = next(r for r in frames if abs(r.time - falls[0].time) < 1e-3)
    feet = [p.box[3] / fired_on.size[1] for p in fired_on.persons + fired_on.unseen if p.id == falls[0].person]
    assert feet and feet[0] >= 0.75  # on the mat as the zone draws it: the test's premise, read from the pose


@pytest.mark.video
def test_the_down_rule_fires_after_its_seconds_on_the_floor_of_a_real_fall(fall_run):
    fired, frames = fall_run
    fall = next(e for e in fired["none"] if e.label == "fall")
    downs = [e for e in fired["none"] if e.label == "down"]
    assert len(downs) == 1 and downs[0].person == fall.person and downs[0].rule == "down:2s"
    assert 2.0 <= downs[0].duration < 2.0 + 1.5 / 29.9  # fired on the first frame 2 s after they reached the floor
    reached = downs[0].time - downs[0].duration
    assert 0.5 <= reached <= 1.5  # the cue's floor time, near the hand-read 1.0 s
    shown = [(r.time, p.down) for r in frames for p in r.persons + r.unseen if p.id == fall.person and p.down is not None]
    assert shown and all(abs(down - (t - reached)) < 1e-3 for t, down in shown)  # the state counts the seconds since then
    assert shown[0][0] <= fall.time + 1e-3  # shown from the fall's confirmation on (event times are rounded to 0.1 ms)


@pytest.mark.video
def test_no_down_state_nor_event_on_squats(gmdcsa_detections):
    fired, frames = alert_runs(gmdcsa_detections(SQUATS), clip(SQUATS), {"none": []})
    assert sum(len(r.persons) for r in frames) > 50  # someone was seen squatting
    assert fired["none"] == [] and all(p.down is None for r in frames for p in r.persons + r.unseen)
