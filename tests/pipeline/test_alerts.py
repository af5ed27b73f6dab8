"""Alert rules and events without a server: rule syntax and files, the episode logic on frames with
hand-set labels, and `run --alert --events` on real video with real pose. (The service's snapshots
and event sinks are in tests/serve/test_transports.py.)"""

import json

import numpy as np
import pytest

from actionlstm.errors import UserError
from pipeline.actions import LabelProb
from pipeline.alerts import Alerts
from pipeline.predictor import FrameResult, PersonResult
from pipeline.rules import AlertRule, check_rules, load_rules, parse_rule
from tests.helpers import run_cli

IMAGE = np.zeros((48, 64, 3), np.uint8)


# --- rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("fall>=0.8:1s", AlertRule("fall", 0.8, 1.0)),
        ("wave:2", AlertRule("wave", None, 2.0)),
        ("wave:2.5s", AlertRule("wave", None, 2.5)),
        ("fall>=0.9", AlertRule("fall", 0.9, None)),
        ("*", AlertRule("*")),
        ("*>=0:0", AlertRule("*", 0.0, 0.0)),
        ("Jumping Jack>=0.5", AlertRule("Jumping Jack", 0.5, None)),
        ("wave:2/5m", AlertRule("wave", None, 2.0, 300.0)),
        ("fall>=0.8:1s/90", AlertRule("fall", 0.8, 1.0, 90.0)),
        ("down:30/1h", AlertRule("down", None, 30.0, 3600.0)),
        ("*/0.5m", AlertRule("*", None, None, 30.0)),
    ],
)
def test_rule_syntax(text, rule):
    assert parse_rule(text) == rule
    assert str(parse_rule(str(rule))) == str(rule)  # what a rule says of itself reads back as the same rule


def test_what_a_rule_leaves_out_is_the_models_own_else_the_defaults():
    own = {"fall": {"prob": 0.6, "seconds": 0.4}}
    rules = check_rules([parse_rule(t) for t in ("fall", "fall>=0.9", "fall:2", "*", "wave")], ["fall", "wave"], own)
    assert rules == [
        AlertRule("fall", 0.6, 0.4),
        AlertRule("fall", 0.9, 0.4),
        AlertRule("fall", 0.6, 2.0),
        AlertRule("*", 0.7, 1.0),
        AlertRule("wave", 0.7, 1.0),
    ]
    assert [str(r) for r in rules[:2]] == ["fall>=0.6:0.4s", "fall>=0.9:0.4s"]
    assert check_rules([parse_rule("fall")], ["fall"]) == [AlertRule("fall", 0.7, 1.0)]  # a model that records none


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is not LABEL"),
        (">=0.5", "is not LABEL"),
        ("fall>=x", "'x' is not a number"),
        ("fall:", "'' is not a number"),
        ("fall>=1.5", "between 0 and 1"),
        ("fall:-1", "0 or more seconds"),
        ("fall:inf", "0 or more seconds"),
        ("a:b:c", "is not LABEL"),
        ("fall/5d", "cooldown '5d' is not a duration"),
        ("fall:1/", "cooldown '' is not a duration"),
        ("fall/-1m", "0 or more seconds"),
    ],
)
def test_bad_rules_are_refused_in_one_line(text, fragment):
    with pytest.raises(UserError) as error:
        parse_rule(text)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_rules_files_yaml_and_toml(tmp_path):
    (tmp_path / "r.yaml").write_text("alerts:\n  - label: fall\n    prob: 0.8\n    seconds: 2\n    cooldown: 5m\n  - 'wave:3/10'\n")
    (tmp_path / "r.toml").write_text('[[alerts]]\nlabel = "fall"\nprob = 0.8\nseconds = 2\ncooldown = 300\n\n[[alerts]]\nlabel = "*"\n')
    assert load_rules(tmp_path / "r.yaml") == [AlertRule("fall", 0.8, 2.0, 300.0), AlertRule("wave", None, 3.0, 10.0)]
    assert load_rules(tmp_path / "r.toml") == [AlertRule("fall", 0.8, 2.0, 300.0), AlertRule("*")]
    for name, text, fragment in [
        ("bad.yaml", "alerts: [", "not valid YAML"),
        ("empty.yaml", "other: 1\n", "non-empty list 'alerts'"),
        ("key.yaml", "alerts:\n  - label: fall\n    probability: 0.8\n", "unknown key 'probability'"),
        ("type.toml", '[[alerts]]\nlabel = "fall"\nprob = "high"\n', "prob must be a number"),
        ("cool.yaml", "alerts:\n  - label: fall\n    cooldown: soon\n", "cooldown 'soon' is not a duration"),
        ("r.json", "{}", ".yaml, .yml or .toml"),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(UserError) as error:
            load_rules(tmp_path / name)
        assert fragment in str(error.value), (name, error.value)


def test_a_rule_for_a_class_the_model_lacks_is_refused():
    check_rules([AlertRule("wave"), AlertRule("*")], ["wave", "clap"])
    with pytest.raises(UserError, match="no class 'fal'"):
        check_rules([AlertRule("fal")], ["wave", "fall"])


# --- the episode logic ------------------------------------------------------------------------------


def person(pid: int, label: str | None, prob: float = 0.9, uncertain: bool = False) -> PersonResult:
    top5 = None if label is None else [LabelProb(label, prob), LabelProb("other", 1 - prob)]
    return PersonResult(pid, [1.0, 2.0, 30.0, 40.0], top5, uncertain)


def frames(alerts: Alerts, timeline: list[tuple[float, list[PersonResult]]], session: int = 0, source: int = 0) -> list:
    """Feed (time, persons) frames; return (time, event) for every event fired."""
    fired = []
    for t, persons in timeline:
        result = FrameResult(int(t * 10), t, IMAGE, persons, 10.0, source=source, session=session)
        fired += [(t, e) for e in alerts.update(result, "cam", origin=1_000_000.0)]
    return fired


def at_10fps(seconds: float, *persons_of) -> list[tuple[float, list[PersonResult]]]:
    """`seconds` of frames at 10 fps; persons_of(t) gives each frame's persons."""
    return [(round(k / 10, 1), [p for make in persons_of for p in make(round(k / 10, 1))]) for k in range(round(seconds * 10))]


def test_fires_once_the_rule_has_held_for_its_duration_and_once_per_episode():
    alerts = Alerts([parse_rule("fall>=0.8:1s")])
    fired = frames(alerts, at_10fps(5.0, lambda t: [person(1, "fall", 0.9)]))
    assert [t for t, _ in fired] == [1.0]  # held from 0.0: 1 s later, and never again in the episode
    event = fired[0][1]
    assert (event.id, event.person, event.label, event.prob, event.duration, event.time, event.source) == (
        1,
        1,
        "fall",
        0.9,
        1.0,
        1.0,
        "cam",
    )
    assert event.rule == "fall>=0.8:1s" and event.box == [1.0, 2.0, 30.0, 40.0]
    assert event.start.startswith("1970-01-12T") and event.at != event.start  # ISO 8601 from origin + source time


def test_low_probability_and_uncertain_frames_never_fire_and_restart_the_duration():
    alerts = Alerts([parse_rule("fall>=0.8:1s")])

    def label(t):
        if 0.5 <= t < 0.6:
            return [person(1, "fall", 0.7)]  # below the rule's 0.8
        if 1.2 <= t < 1.3:
            return [person(1, "fall", 0.95, uncertain=True)]
        return [person(1, "fall", 0.9)]

    fired = frames(alerts, at_10fps(4.0, label))
    assert [t for t, _ in fired] == [2.3]  # restarted at 0.6, broken at 1.2, held again from 1.3
    assert frames(Alerts([parse_rule("fall>=0:0")]), [(0.0, [person(1, "fall", 0.99, uncertain=True)])]) == []


def test_re_arms_after_another_label_not_after_an_uncertain_or_missed_frame():
    alerts = Alerts([parse_rule("fall:0.5")])

    def label(t):
        if 1.0 <= t < 1.3:
            return [person(1, "fall", uncertain=True)]  # uncertain: not another label
        if 1.5 <= t < 1.7:
            return []  # not detected
        if 2.0 <= t < 2.3:
            return [person(1, "walk")]  # another label: the next fall is a new episode
        return [person(1, "fall")]

    assert [t for t, _ in frames(alerts, at_10fps(4.0, label))] == [0.5, 2.8]


def test_a_person_out_of_sight_keeps_holding_their_rule_until_the_tracker_lets_them_go():
    """A fall seen for 0.3 s, then the person is lost (on the floor): their kept label goes on holding."""
    seen = PersonResult(1, [5.0, 6.0, 50.0, 60.0], [LabelProb("fall", 0.9), LabelProb("lying", 0.1)])
    kept = PersonResult(1, [5.0, 6.0, 50.0, 60.0], seen.top5)  # as the pipeline lists an unseen person: last box, last labels

    def run(unseen_until: float) -> list:
        alerts, fired = Alerts([parse_rule("fall>=0.8:1s")]), []
        for k in range(30):
            t = round(k / 10, 1)
            persons, unseen = ([seen], []) if t < 0.3 else ([], [kept] if t < unseen_until else [])
            fired += [(t, e) for e in alerts.update(FrameResult(k, t, IMAGE, persons, 10.0, unseen=unseen), "cam")]
        return fired

    fired = run(unseen_until=2.0)
    assert [t for t, _ in fired] == [1.0] and fired[0][1].box == [5.0, 6.0, 50.0, 60.0]
    assert run(unseen_until=0.8) == []  # let go before the rule's second: no event
    uncertain = PersonResult(1, kept.box, kept.top5, uncertain=True)
    alerts = Alerts([parse_rule("fall>=0.8:0.5s")])
    assert alerts.update(FrameResult(0, 0.0, IMAGE, [seen], 10.0)) == []
    assert alerts.update(FrameResult(1, 0.3, IMAGE, [], 10.0, unseen=[uncertain])) == []  # uncertain breaks it, seen or not
    assert alerts.update(FrameResult(2, 0.6, IMAGE, [], 10.0, unseen=[kept])) == []  # held again from 0.6 only


def test_any_label_fires_per_label_and_each_person_and_source_has_its_own_episodes():
    alerts = Alerts([parse_rule("*>=0.5:0.3")])
    fired = frames(alerts, at_10fps(2.0, lambda t: [person(1, "wave" if t < 1.0 else "clap")], lambda t: [person(2, "wave")]))
    assert [(t, e.person, e.label) for t, e in fired] == [(0.3, 1, "wave"), (0.3, 2, "wave"), (1.3, 1, "clap")]
    other = frames(alerts, at_10fps(0.5, lambda t: [person(1, "wave")]), source=1)
    assert [(t, e.person, e.id) for t, e in other] == [(0.3, 1, 4)]  # ids go on over sources


def test_a_source_that_starts_over_starts_every_episode_afresh():
    alerts = Alerts([parse_rule("fall:0.2")])
    assert len(frames(alerts, at_10fps(1.0, lambda t: [person(1, "fall")]))) == 1
    assert len(frames(alerts, [(t + 1.0, p) for t, p in at_10fps(1.0, lambda t: [person(1, "fall")])])) == 0  # same episode
    again = frames(alerts, [(t + 2.0, p) for t, p in at_10fps(1.0, lambda t: [person(1, "fall")])], session=1)
    assert [t for t, _ in again] == [2.2]  # id 1 of the new session is someone new


def test_several_rules_fire_apart():
    alerts = Alerts([parse_rule("fall>=0.8:0.5"), parse_rule("fall>=0.5:1")])
    fired = frames(alerts, at_10fps(2.0, lambda t: [person(1, "fall", 0.85)]))
    assert [(t, e.rule) for t, e in fired] == [(0.5, "fall>=0.8:0.5s"), (1.0, "fall>=0.5:1s")]


# --- on real video, from the command line -----------------------------------------------------------


@pytest.mark.video
def test_run_writes_one_event_per_episode(trained_checkpoint, short_video, tmp_path, single_thread):
    """`run --alert --events` on real video with real pose: one line per event, each as the rules
    and episodes say (here any label held 1 s, so each person's first steady label)."""
    out = tmp_path / "events.jsonl"
    jsonl = tmp_path / "frames.jsonl"
    proc = run_cli(
        "run",
        short_video,
        "--checkpoint",
        trained_checkpoint,
        "--no-show",
        "--device",
        "cpu",
        "--min-prob",
        "0",
        "--alert",
        "*>=0:1s",
        "--events",
        out,
        "--jsonl",
        jsonl,
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert events, proc.stdout
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    fields = {"id", "source", "person", "label", "prob", "rule", "start", "time", "at", "duration", "box", "snapshot", "clip"}
    assert set(events[0]) == fields
    assert events[0]["snapshot"] is None and events[0]["clip"] is None  # run keeps neither
    frames_by_time = {round(r["time"], 4): r for r in map(json.loads, jsonl.read_text().splitlines())}
    for event in events:
        assert event["duration"] >= 1.0 - 1e-6 and event["source"] == "0" and event["snapshot"] is None
        shown = {p["id"]: p for p in frames_by_time[event["time"]]["persons"]}[event["person"]]
        assert shown["top5"][0]["label"] == event["label"] and shown["top5"][0]["prob"] == pytest.approx(event["prob"], abs=1e-4)
    # the run's own per-frame labels, replayed through a fresh engine, fire exactly these events
    replay, expected = Alerts([parse_rule("*>=0:1s")]), []
    for record in map(json.loads, jsonl.read_text().splitlines()):
        persons = [
            PersonResult(
                p["id"], p["box"], [LabelProb(t["label"], t["prob"]) for t in p["top5"]] if p["top5"] else None, p.get("uncertain", False)
            )
            for p in record["persons"]
        ]
        expected += replay.update(FrameResult(record["frame"], record["time"], IMAGE, persons, 0.0), "0", origin=0.0)
    assert [(e.id, e.person, e.label, e.time) for e in expected] == [(e["id"], e["person"], e["label"], e["time"]) for e in events]
    assert f"{len(events)} alert event" in proc.stdout


def test_a_cooldown_keeps_the_rule_quiet_on_its_source_for_everybody_and_spends_the_episodes_it_hides():
    """fall/2s: person 1 fires at 0.5 s; person 2's fall at 1.0 s and person 1's new one at 1.6 s fall
    within the 2 s and are kept quiet (and do not fire when it ends); a fall after it fires."""
    alerts = Alerts([parse_rule("fall:0.5/2s")])

    def one(t):
        return [person(1, "fall" if t < 1.0 or 1.1 <= t < 3.0 else "walk")]

    def two(t):
        return [person(2, "fall" if 0.5 <= t < 3.5 or t >= 4.0 else "walk")]

    fired = frames(alerts, at_10fps(5.0, one, two))
    assert [(t, e.person) for t, e in fired] == [(0.5, 1), (4.5, 2)]
    assert alerts.quieted == {"cooldown": 2}
    assert fired[1][1].id == 2  # quiet episodes take no id
    fresh = Alerts([parse_rule("fall:0.5/2s")])
    fresh.last_fired = dict(alerts.last_fired)  # as a restarted service restores it: the cooldown goes on
    assert frames(fresh, [(4.6, [person(7, "fall")]), (5.2, [person(7, "fall")])]) == []
    assert [t for t, _ in frames(fresh, [(7.0, [person(8, "fall")]), (7.5, [person(8, "fall")])])] == [7.5]


def test_a_gate_keeps_rules_quiet_while_it_says_why_and_active_shows_who_holds_a_rule():
    alerts = Alerts([parse_rule("fall:0.3"), parse_rule("wave:0.3")])
    closed = {"until": 1.0}
    alerts.gate = lambda source, rule: "disarmed" if source == "cam" and now["t"] < closed["until"] and rule.label == "fall" else None
    now, fired, held = {"t": 0.0}, [], []
    one, two = (lambda t: [person(1, "fall" if t < 2.0 else "wave")]), (lambda t: [person(2, "fall" if t >= 1.2 else "walk")])
    for t, persons in at_10fps(3.0, one, two):
        now["t"] = t
        fired += [(t, e.person, e.label) for e in alerts.update(FrameResult(int(t * 10), t, IMAGE, persons, 10.0), "cam", 0.0)]
        held.append((t, alerts.active["cam"]))
    # person 1's fall held while disarmed: spent; person 2's began after re-arming: fires; the wave fires
    assert fired == [(1.5, 2, "fall"), (2.3, 1, "wave")]
    assert alerts.quieted == {"disarmed": 1}
    assert dict(held)[0.2] == [False, False] and dict(held)[0.3] == [True, False] and dict(held)[2.1] == [True, False]
    assert dict(held)[2.9] == [True, True]
