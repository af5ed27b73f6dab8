"""The parts of arming, snoozing, cooldowns, discovery and clips that need no running service: the
state a restart finds, a snooze that runs out on time, stable entity ids, the clip folder's
retention by age and count, and a clip given up half-way leaving nothing. (The service end to end,
with a real broker and Chromium, is in test_serve.py and test_serve_falls.py.)"""

import os
import time

import numpy as np
import pytest

from actionlstm.errors import UserError
from pipeline.actions import LabelProb
from pipeline.alerts import Alerts
from pipeline.predictor import FrameResult, PersonResult
from pipeline.rules import parse_rule
from pipeline.serve import discovery
from pipeline.serve.clips import ClipStore, parse_clip_seconds, write_clip
from pipeline.serve.control import Control

IMAGE = np.zeros((48, 64, 3), np.uint8)


def falling(k: int, t: float, source: int = 0) -> FrameResult:
    """Frame k at time t of `source` with a new person falling every 0.5 s (each a new episode)."""
    person = PersonResult(int(t // 0.5), [1.0, 2.0, 30.0, 40.0], [LabelProb("fall", 0.9), LabelProb("walk", 0.1)])
    return FrameResult(k, t, IMAGE, [person], 10.0, source=source)


def test_arming_snooze_and_cooldown_clocks_outlive_a_restart(tmp_path):
    path, logged = tmp_path / "state.json", []
    control = Control(path, ["0", "cam"], logged.append)
    alerts = Alerts([parse_rule("fall:0/1h")])
    control.attach(alerts)
    control.set_armed("cam", False)
    control.snooze(60)
    assert alerts.update(falling(0, 0.0), "0", 1000.0) == [] and alerts.quieted == {"snoozed": 1}
    control.snooze(0)
    assert len(alerts.update(falling(1, 0.5), "0", 1000.0)) == 1
    control.fired(None, None)  # the hub tells it after each event
    restarted = Control(path, ["0", "cam"], logged.append)
    again = Alerts([parse_rule("fall:0/1h")])
    restarted.attach(again)
    assert restarted.armed == {"0": True, "cam": False} and restarted.snoozed_until() is None
    assert again.update(falling(0, 0.0), "0", 1100.0) == [] and again.quieted == {"cooldown": 1}  # the hour goes on
    assert again.update(falling(0, 0.0, source=1), "cam", 1100.0) == [] and again.quieted["disarmed"] == 1
    restarted.snooze(120)
    assert Control(path, ["0", "cam"]).snoozed_until() == pytest.approx(time.time() + 120, abs=2)
    path.write_text("{not json")
    broken = Control(path, ["0", "cam"], logged.append)
    assert broken.armed == {"0": True, "cam": True} and "not read" in logged[-1] and "\n" not in logged[-1]


def test_a_snooze_runs_out_on_time():
    control = Control(None, ["0"])
    alerts = Alerts([parse_rule("fall:0")])
    control.attach(alerts)
    control.snooze(0.6)
    started, fired = time.monotonic(), []
    for k in range(12):  # a new person falls every 0.1 s for 1.2 s
        person = PersonResult(k, [1.0, 2.0, 30.0, 40.0], [LabelProb("fall", 0.9)])
        fired += [time.monotonic() - started for _ in alerts.update(FrameResult(k, k / 10, IMAGE, [person], 10.0), "0")]
        time.sleep(0.1)
    assert fired and min(fired) >= 0.6 - 0.05 and min(fired) < 0.6 + 0.25, fired
    with pytest.raises(ValueError):
        control.snooze(-1)


def test_entity_ids_stay_when_a_cooldown_or_the_model_changes():
    one = discovery.configs("actionlstm", "homeassistant", ["room"], [parse_rule("fall>=0.8:1s")], ["fall", "walk"], "1")
    two = discovery.configs("actionlstm", "homeassistant", ["room"], [parse_rule("fall>=0.8:1s/5m")], ["fall", "walk", "sit"], "2")
    assert sorted(one) == sorted(two) and [c["unique_id"] for c in one.values()] == [c["unique_id"] for c in two.values()]
    assert "homeassistant/binary_sensor/actionlstm/room_rule_fall_0_8_1s/config" in one
    other = discovery.configs("home/cam", "homeassistant", ["room"], [parse_rule("*")], ["fall"], "1")
    assert {c["device"]["identifiers"][0] for c in other.values()} == {"home_cam"}  # another prefix, another device
    assert next(c for t, c in other.items() if "/event/" in t)["event_types"] == ["fall"]


def test_the_clip_folder_is_bounded_by_age_and_count_over_every_run(tmp_path):
    earlier = tmp_path  # every run shares the folder
    for k in range(3):
        (earlier / f"event-{k}.mp4").write_bytes(b"x")
    os.utime(earlier / "event-0.mp4", (time.time() - 3 * 3600,) * 2)
    (earlier / "notes.mp4").write_bytes(b"mine")
    store = ClipStore(tmp_path, keep=3, max_age=2 * 3600)
    assert sorted(p.name for p in earlier.iterdir()) == ["event-1.mp4", "event-2.mp4", "notes.mp4"]  # too old: gone
    frames = [(k / 10, np.full((48, 64, 3), k * 10, np.uint8)) for k in range(5)]
    write_clip(store.file(7), frames)
    write_clip(store.file(8), frames)
    store.prune()
    kept = sorted(p.name for p in tmp_path.glob("*.mp4"))
    assert kept == ["event-2.mp4", "event-7.mp4", "event-8.mp4", "notes.mp4"]  # the oldest beyond 3 went; not others' files
    assert store.path(8) is not None and store.path(2) is not None and store.path(1) is None  # an earlier run's clip is served


def test_a_clip_given_up_half_way_leaves_no_file(tmp_path):
    frames = [(k / 10, np.zeros((48, 64, 3), np.uint8)) for k in range(20)]
    asked = iter(range(100))
    with pytest.raises(InterruptedError):
        write_clip(tmp_path / "event-1.mp4", frames, lambda: next(asked) >= 10)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["5", "5:x", "-1:5", "0:0", "61:1"])
def test_bad_clip_seconds_are_refused_in_one_line(text):
    with pytest.raises(UserError, match="BEFORE:AFTER"):
        parse_clip_seconds(text)
    assert parse_clip_seconds("5:5") == (5.0, 5.0)
