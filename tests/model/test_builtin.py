"""Built-in models: names resolve to the packaged model before any path, `actionlstm models` says what
each is, and the shipped fall model run as a user runs it (`run CLIP --checkpoint falls --alert fall
--events`) on real clips. How its training data is cut from GMDCSA24's time segments is tested
against hand-made annotations."""

import importlib.util
import json
from dataclasses import asdict

import pytest

from actionlstm.builtin import BUILTINS, builtin_name, builtin_path, resolve_checkpoint
from actionlstm.checkpoint import load_checkpoint
from pipeline.rules import AlertRule
from tests.helpers import ROOT, SHARED_DATA, assert_user_error, run_cli

spec = importlib.util.spec_from_file_location("train_builtin", ROOT / "scripts" / "train_builtin.py")
train_builtin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_builtin)
Segment = train_builtin.Segment
FALLS = SHARED_DATA / "falls"


def test_gmdcsa24_segments_are_read_as_written():
    parse = train_builtin.parse_segments
    assert parse(" Falling (SW)[3.4 to 6]; Sitting[0 to 3.4]") == [Segment("falling", 3.4, 6.0), Segment("sitting", 0.0, 3.4)]
    assert parse("Falling (BW) [0.3 to 5]; Standing [0 to 0.2]") == [Segment("falling", 0.3, 5.0), Segment("standing", 0.0, 0.2)]
    assert parse("Standing[0 to 0.5; 4.2 to 6.5]; Sitting[9.7 to 3]") == [
        Segment("standing", 0.0, 0.5),
        Segment("standing", 4.2, 6.5),
        Segment("sitting", 3.0, 9.7),  # an end given first
    ]
    assert parse("Falling (SW)[1.8 to 5]:; Walking[0 to 1.8]") == [Segment("falling", 1.8, 5.0), Segment("walking", 0.0, 1.8)]
    assert parse("Fall (FW)[0 to 3]") == [Segment("fall", 0.0, 3.0)]


def test_a_window_is_a_fall_only_while_it_shows_the_fall_starting():
    label = train_builtin.window_label
    fall_clip = [Segment("falling", 2.0, 8.0), Segment("walking", 0.0, 2.0)]
    assert label(fall_clip, 0.0, 1.5) == "walking"  # before the fall
    assert label(fall_clip, 0.0, 2.5) is None  # the fall has only just begun
    assert label(fall_clip, 0.0, 3.0) == "fall" and label(fall_clip, 1.0, 6.0) == "fall"  # from 1 s to 4 s after its start
    assert label(fall_clip, 2.5, 5.0) is None  # the start is out of view, the person not down for long
    assert label(fall_clip, 3.0, 7.0) == "lying"  # down, the fall out of view
    assert label(fall_clip, 1.0, 6.5) is None  # more than 4 s after: neither
    daily = [Segment("sleeping", 5.0, 9.0), Segment("sitting", 0.0, 6.0), Segment("exercising", 9.0, 12.0)]
    assert [label(daily, 0.0, t) for t in (3.0, 5.5, 10.0)] == ["sitting", "lying", None]  # lying outranks sitting; no class for exercise


def test_a_fall_clip_gives_fall_windows_with_the_descent_and_lying_ones_without(tmp_path):
    """10 s at 10 fps, fall at 4 s: fall windows hold the start, the `down` cuts begin DOWN_AFTER
    later, and the slowed descent plays at a quarter of the rate."""
    import numpy as np

    frames, fps = 100, 10.0
    annotation = {
        "fps": fps,
        "img_shape": (480, 640),
        "original_shape": (480, 640),
        "keypoint": np.ones((1, frames, 17, 2), np.float16),
        "keypoint_score": np.ones((1, frames, 17), np.float16),
    }
    segments = [Segment("walking", 0.0, 4.0), Segment("falling", 4.0, 10.0)]
    found = train_builtin.windows_of("S9_Fall_01", annotation, segments, seconds=4.8, min_seconds=1.0)
    by_tag = {clip["frame_dir"].split("@")[1]: (label, clip) for label, clip in found}
    falls = [clip for label, clip in found if label == "fall"]
    assert falls and all(clip["total_frames"] <= 48 for clip in falls)
    assert by_tag["3.0"][0] == "walking" and by_tag["5.0"][0] == "fall" and "4.4" not in by_tag  # 0.4 s into the fall: unclear
    label, down = by_tag["7.0down"]
    assert label == "lying" and down["total_frames"] == 71 - 50  # frames 50..70: from 1 s after the start
    assert "5.8down" not in by_tag and "6.2down" in by_tag  # cut only once down for min_seconds
    label, slow = by_tag["slow0.25"]
    assert label == "lying" and slow["fps"] == fps * 0.25 and slow["total_frames"] == 55 - 35 + 1


def test_built_in_names_come_before_paths_and_paths_stay_paths(tmp_path, monkeypatch):
    assert set(BUILTINS) == {"falls"}
    packaged = resolve_checkpoint("falls")
    assert packaged.is_file() and packaged.parent.name == "models" and builtin_name(packaged) == "falls"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "falls").write_bytes(b"not a model")
    assert resolve_checkpoint("falls") == packaged  # the bare name is the built-in, a file of that name notwithstanding
    assert resolve_checkpoint("./falls").resolve() == (tmp_path / "falls").resolve()
    from pathlib import Path

    assert resolve_checkpoint(Path("falls")) == Path("falls")  # a Path is a path


def test_models_lists_what_each_built_in_is(tmp_path):
    proc = run_cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    (falls,) = json.loads(proc.stdout)
    assert falls["name"] == "falls" and falls["alert"] == "fall"
    assert falls["classes"] == ["fall", "lying", "sitting", "standing", "walking"]
    assert "GMDCSA24" in falls["data"] and "MIT" in falls["license"] and "Alam" in falls["citation"]
    assert "falls caught" in falls["measured"]
    point = falls["alert_defaults"]["fall"]  # the shipped model's own operating point, what `--alert fall` means
    assert point == train_builtin.ALERT["fall"]
    assert falls["fall"] == train_builtin.FALL.to_dict() and "fall cue" in falls["measured"]  # measured with it
    text = run_cli("models").stdout
    assert "fall is read from geometry: someone up (on their feet or a seat) is on the floor within 1.5 s" in text
    assert "falls" in text and "MIT" in text and "--checkpoint falls" in text
    assert f"--alert fall means: {AlertRule('fall', **point)}" in text
    (tmp_path / "falls").write_bytes(b"not a model")  # ./falls is that file, refused as it is
    proc = run_cli("export", "./falls", cwd=tmp_path)
    assert_user_error(proc, "falls")


def test_the_built_in_recipe_is_the_one_its_weights_were_trained_with():
    """scripts/train_builtin.py pins its recipe in full, so a change of the project's defaults (the view
    augmentation of issue 37) does not change the shipped weights when they are rebuilt: what the
    packaged model records of its training is that recipe, and settings added since are off in it."""
    meta = load_checkpoint(builtin_path("falls")).meta
    recipe = train_builtin.RECIPE
    assert load_checkpoint(builtin_path("falls")).preprocess == recipe["pre"]
    assert meta["train_config"] == asdict(recipe["train"])
    pinned = asdict(recipe["augment"])
    added = {key: pinned.pop(key) for key in set(pinned) - set(meta["augment"])}
    assert pinned == meta["augment"]
    assert added == {"yaw_degrees": 0.0, "pitch_degrees": 0.0, "forward_speed": 0.0}  # drawn not at all (augment.SpatialAugment)


@pytest.mark.video
@pytest.mark.parametrize(("clip", "falls"), [("fall/S2_Fall_13.mp4", 1), ("adl/S3_ADL_18.mp4", 0)])
def test_run_with_the_built_in_fall_model_writes_one_event_per_fall(clip, falls, tmp_path, single_thread):
    """A clip of the model's own training data: this checks the packaged model end to end as a user
    runs it, not how well it does on people it never saw (that is scripts/train_builtin.py's LOSO)."""
    video = FALLS / clip
    if not video.exists():
        pytest.skip(f"{video} is not there")
    events = tmp_path / "ev.jsonl"
    proc = run_cli("run", video, "--checkpoint", "falls", "--alert", "fall", "--events", events, "--no-show", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    found = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["label"] for e in found] == ["fall"] * falls
    assert "action model falls.pth: 5 classes" in proc.stderr and "SYNTHETIC" not in proc.stderr
    point = load_checkpoint(builtin_path("falls")).alert_defaults["fall"]
    assert f"alert rule {AlertRule('fall', **point)}" in proc.stderr  # a bare `--alert fall` takes the model's own point
    assert all(e["rule"] == str(AlertRule("fall", **point)) for e in found)
