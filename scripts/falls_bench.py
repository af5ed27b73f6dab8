"""The fall alert's benchmark: falls caught and how soon after the person reached the floor, and false
alarms, per clip and per hour, on everything here that shows no fall.

    python scripts/falls_bench.py                                   # every part, work kept in runs/falls_bench
    python scripts/falls_bench.py --part videos --checkpoint my.pth

Every clip is played through the live runtime as `actionlstm run CLIP --checkpoint falls --alert
fall` plays it (buffers, model, fall cue, alert rule; `pipeline.replay`), from skeletons extracted
once by `actionlstm extract`'s own pose stage and cache: the tracker's ids are the only difference
from a live run. Parts:

  videos   GMDCSA24's 14 falls and 9 daily activities (4 subjects), and every other video here with
           no fall in it: three people exercising, two playing basketball, 18 arm-movement clips.
  cameras  GMDCSA24's clips as other cameras would show them (scripts/camera_study.py): 320 pixels
           wide, half the frame rate, looking further down (`--camera` for others).
  mocap    HDM05 motion capture of two actors (mm, tr), every take through 8 virtual cameras (3 a
           metre high at 320x240 and 30 fps, as on a shelf; 5 drawn at random): lying down on the
           floor on purpose, bending to the floor, squats and 8 other motions, none a fall.

A fall is caught when an event fires at or after the fall's labelled start (less 0.25 s, train_builtin.EARLY); its delay
is counted from the moment the clip first shows the person on the floor (scripts/falls_floor.csv,
read by hand). A clip with no fall raises a false alarm when any event fires; false alarms per hour
divide the events by the hours of no-fall footage played. Prints a table per part and writes every
clip's outcome to WORK/bench.json.
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import camera_study
import numpy as np
import torch
import train_builtin as builtin
from rich.console import Console
from rich.progress import track
from rich.table import Table

from actionlstm import mocap
from actionlstm.builtin import resolve_checkpoint
from actionlstm.checkpoint import load_checkpoint
from actionlstm.pickle_io import load_pickle
from actionlstm.videoset import find_videos
from pipeline.actions import ActionRuntime
from pipeline.alerts import Alerts
from pipeline.extract.dataset import extract_dataset
from pipeline.replay import replay
from pipeline.rules import check_rules, parse_rule
from pipeline.settings import PoseSettings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PARTS = ("videos", "cameras", "mocap")
CAMERAS = ("320-wide", "half-fps", "looking-down")
HELD_OUT_ACTORS = ("mm", "tr")  # HDM05's actors left out of every choice in docs/falls.md's cross-validation fold for them
SHELF = [mocap.Camera(yaw=yaw, height=1.0, distance=3.5, width=320, image_height=240, fps=30.0, hfov=57.0) for yaw in (0.0, 90.0, 200.0)]
RANDOM_CAMERAS = 5
MAX_PERSONS = {"GMDCSA24": 2, "other": 4}  # extract's default for the one-person clips; room for a group elsewhere
console = Console(width=None if sys.stdout.isatty() else 160)  # a log file gets the whole table


def skeletons(videos: list[Path], out: Path, max_persons: int) -> list[dict]:
    """The clips of `videos`, extracted with `actionlstm extract`'s pose stage into `out` (a video
    extracted before, here or by `extract`, comes from its cache)."""
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"{video.resolve()} {video.parent.name}\n" for video in videos))
    extract_dataset(find_videos(listing), out, PoseSettings(), max_persons, test=r"^$")
    return load_pickle(out)["annotations"]


def fall_events(runtime: ActionRuntime, rules: list, clip: dict) -> list[float]:
    """The times of the events one clip raises, played as `run` plays it."""
    alerts = Alerts(rules)
    played = replay(runtime, clip["keypoint"], clip["keypoint_score"], float(clip["fps"]), tuple(clip["img_shape"]))
    return [event.time for result in played for event in alerts.update(result)]


def outcome(name: str, clip: dict, events: list[float], fall_start: float | None, floor: float | None) -> dict:
    seconds = clip["total_frames"] / float(clip["fps"])
    found = {"clip": name, "seconds": round(seconds, 2), "events": [round(t, 2) for t in events], "fall": fall_start is not None}
    if fall_start is not None:
        caught = builtin.after_start(events, fall_start)
        found["caught"] = bool(caught)
        found["delay"] = round(caught[0] - floor, 2) if caught and floor is not None else None
    return found


def gmdcsa_clips(runtime: ActionRuntime, rules: list, clips: list[dict]) -> list[dict]:
    """Outcomes of GMDCSA24 clips (their names say fall or ADL; a camera copy keeps the clip's times)."""
    annotations = builtin.read_annotations(DATA / "falls" / "annotations")
    floors = builtin.read_floor_times()
    found = []
    for clip in track(clips, description="clips", console=console, transient=True):
        name = Path(clip["frame_dir"]).name
        start = builtin.fall_start(annotations.get(name, [])) if "_Fall_" in name else None
        found.append(outcome(name, clip, fall_events(runtime, rules, clip), start, floors.get(name)))
    return found


def gmdcsa_skeletons(work: Path, camera: str = "original") -> list[dict]:
    """GMDCSA24's clips as `camera` (scripts/camera_study.py) would show them, extracted; the camera
    copies are kept in WORK/cameras."""
    falls = sorted((DATA / "falls").glob("*/*.mp4"))
    if camera == "original":
        return skeletons(falls, work / "gmdcsa24.pkl", MAX_PERSONS["GMDCSA24"])
    folder = work / "cameras" / camera
    videos = [folder / video.parent.name / f"{video.stem}.avi" for video in falls]
    for video, seen in zip(falls, videos):
        if not seen.exists():
            seen.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:  # written whole, then moved: no half video kept
                camera_study.as_seen_by(camera, video, Path(tmp)).rename(seen)
    return skeletons(videos, work / f"gmdcsa24_{camera}.pkl", MAX_PERSONS["GMDCSA24"])


def videos_part(runtime: ActionRuntime, rules: list, work: Path) -> dict[str, list[dict]]:
    others = sorted((DATA / "videos").glob("*.*")) + sorted((DATA / "actions").glob("*/*.*"))
    gmdcsa = gmdcsa_clips(runtime, rules, gmdcsa_skeletons(work))
    clips = skeletons(others, work / "other_videos.pkl", MAX_PERSONS["other"])
    other = [
        outcome(Path(clip["frame_dir"]).name, clip, fall_events(runtime, rules, clip), None, None)
        for clip in track(clips, description="other videos", console=console, transient=True)
    ]
    return {"GMDCSA24": gmdcsa, "other videos": other}


def cameras_part(runtime: ActionRuntime, rules: list, work: Path, cameras: list[str]) -> dict[str, list[dict]]:
    return {f"GMDCSA24, {camera}": gmdcsa_clips(runtime, rules, gmdcsa_skeletons(work, camera)) for camera in cameras}


def mocap_part(runtime: ActionRuntime, rules: list, seed: int = 0) -> dict[str, list[dict]]:
    takes = [take for take in mocap.list_takes(DATA / "mocap" / "hdm05") if take.actor in HELD_OUT_ACTORS]
    rng = np.random.default_rng(seed)
    cameras = {take.key: SHELF + mocap.random_cameras(RANDOM_CAMERAS, int(rng.integers(1 << 30))) for take in takes}
    rendered = mocap.render_dataset(takes, lambda take: cameras[take.key], lambda take, camera: "test", seed=seed)["annotations"]
    found: dict[str, list[dict]] = {}
    for clip in track(rendered, description="mocap renders", console=console, transient=True):
        motion = clip["frame_dir"].split("_")[2]
        found.setdefault(f"HDM05 {motion}", []).append(outcome(clip["frame_dir"], clip, fall_events(runtime, rules, clip), None, None))
    return dict(sorted(found.items()))


def summary(rows: dict[str, list[dict]]) -> Table:
    table = Table("clips", "falls caught", "alert after the floor (median, max)", "no-fall clips alarmed", "false alarms / hour", "hours")
    for name, clips in rows.items():
        falls = [c for c in clips if c["fall"]]
        quiet = [c for c in clips if not c["fall"]]
        delays = [c["delay"] for c in falls if c.get("delay") is not None]
        hours = sum(c["seconds"] for c in quiet) / 3600
        events = sum(len(c["events"]) for c in quiet)
        table.add_row(
            name,
            f"{sum(c['caught'] for c in falls)} of {len(falls)}" if falls else "-",
            f"{statistics.median(delays):.1f} s, {max(delays):.1f} s" if delays else "-",
            f"{sum(bool(c['events']) for c in quiet)} of {len(quiet)}" if quiet else "-",
            f"{events / hours:.1f}" if hours else "-",
            f"{hours:.2f}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="falls", help="a checkpoint or a built-in model's name (default: falls)")
    parser.add_argument("--alert", default="fall", help="the alert rule, as `run --alert` takes it (default: the model's own for fall)")
    parser.add_argument("--part", action="append", choices=PARTS, help="repeatable; default: all")
    parser.add_argument("--camera", action="append", choices=list(camera_study.CAMERAS), help=f"repeatable; default: {', '.join(CAMERAS)}")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "falls_bench", help="where extractions and camera copies are kept")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    clf = load_checkpoint(resolve_checkpoint(args.checkpoint))
    rules = check_rules([parse_rule(args.alert)], clf.class_names, clf.alert_defaults)
    runtime = ActionRuntime(clf, torch.device("cpu"))
    found: dict[str, list[dict]] = {}
    for part in args.part or PARTS:
        if part == "videos":
            found.update(videos_part(runtime, rules, args.work))
        elif part == "cameras":
            found.update(cameras_part(runtime, rules, args.work, args.camera or list(CAMERAS)))
        else:
            found.update(mocap_part(runtime, rules))
    console.print(f"{args.checkpoint}, alert {rules[0]}")
    mocap_rows = [clip for name, clips in found.items() if name.startswith("HDM05") for clip in clips]
    console.print(summary({**found, **({"HDM05, every motion": mocap_rows} if mocap_rows else {})}))
    (args.work / "bench.json").write_text(json.dumps({"checkpoint": str(args.checkpoint), "rule": str(rules[0]), "parts": found}, indent=1))


if __name__ == "__main__":
    main()
