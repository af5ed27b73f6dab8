"""Build a built-in model from data whose license lets its weights ship, with one reproducible command.

    python scripts/train_builtin.py falls                  # ../shared/data/falls -> actionlstm/models/falls.pth
    python scripts/train_builtin.py falls --no-loso        # the model only, without measuring it first

`falls` learns from GMDCSA24 (MIT; 4 subjects at home, fall and daily-activity clips with the
dataset's own time segments, `annotations/Subject{s}_{Fall,ADL}.csv`). An alert on `fall` must mean
someone is falling or has just fallen, not that someone lies down, so the classes come from what a
live window shows, not from the clip it is in:

- `fall`: the window holds the fall's start (the segment `Falling (..)[a to b]` starts at a) and at
  least FALL_SEEN seconds after it, at most FALL_LAST: the descent itself, seen as it is seen live.
- `lying`: the person is down with no fall in view: the end of a fall clip once the fall has left
  the window, the same moments cut to start DOWN_AFTER seconds after the fall's start (as a person
  first seen once down, or lying for long, is seen: the model learns that the descent, not the
  posture at the end, makes a fall), a `Sleeping` segment, and a fall clip's descent played four
  times slower (its frames given a quarter of their frame rate): lying down on purpose is the same
  path, taken slowly.
- `sitting`, `standing`, `walking`: the daily-activity segment at the window's end.
Windows that are none of these clearly (just after a fall starts, `Exercising`, no segment) are left out.

Windows end every WINDOW_STEP seconds and reach back as far as a live window does (the model's
window, or to the person's first frame), so training sees what `run` shows the model. Each is a clip
of the training pickle; the training draws them whole (no shorter crops, little speed change), and
with no validation part (windows of one video would sit on both sides) the last epoch is kept.
Without label smoothing: an alert needs the fall's probability at 0.7 or more on people the model
never saw, and smoothed targets kept it near 0.5 there (leave one subject out: no fall of the first
two subjects caught with smoothing 0.1, four of six without).

The model also carries FALL (`meta["fall"]`, pipeline/falls.py): live, `fall` is read from the
skeleton's geometry alone, whatever the weights say: someone up (on their feet or a seat) who is on
the floor within 1.5 s, with no pause sitting or kneeling on the way, and still lies there (or is out
of sight) a second later. The weights' own reading of `fall` read it for a second after people sat
down on a sofa in another lab's rooms; the geometry needs no training, and its thresholds were
chosen by cross-validation across these subjects and HDM05's actors (docs/falls.md). The model still
gives every other label (lying, sitting, standing, walking).

The model records its own alert operating point, ALERT (`meta["alert_defaults"]`), which is what
`--alert fall` means with it: the cue's reading is already confirmed when it says fall, so the
alert fires at once (held 0 s), about a second after the person reached the floor.

Before the final model, it is measured: leave one subject out (4 trainings of this same recipe), each
held-out clip run through the live pipeline as `actionlstm run CLIP --checkpoint falls --alert fall`
would run it. A fall clip is caught when a fall event fires at or after the labelled fall start; a
daily-activity clip raises a false alarm when any fall event fires. The figures go into the model's
record (`actionlstm models`) and runs/builtin_falls/loso.json.
"""

import argparse
import csv
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionlstm.augment import AugmentConfig
from actionlstm.preprocess import PreprocessConfig
from actionlstm.train import ONE_WIDE, TrainConfig
from pipeline.falls import FallCue
from pipeline.rules import AlertRule

ROOT = Path(__file__).resolve().parents[1]
FLOOR_TIMES = Path(__file__).with_name("falls_floor.csv")

CLASSES = ["fall", "lying", "sitting", "standing", "walking"]
POSTURES = {"sleeping": "lying", "walking": "walking", "standing": "standing", "sitting": "sitting"}  # by priority at one instant
FALL_SEEN = 0.6  # seconds of the fall a window shows at least ...
FALL_LAST = 4.0  # ... and at most, to be a `fall` window
DOWN_AFTER = 1.0  # a window starting this long after the fall's start shows the person down, not falling
EARLY = 0.25  # seconds before a fall's labelled start an event still catches it
SLOW = (0.25,)  # a descent at these fractions of its speed is lying down, not falling
WINDOW_STEP = 0.2
SEED = 0
ALERT = {"fall": {"prob": 0.7, "seconds": 0.0}}  # the model's own operating point: what `--alert fall` means with it
FALL = FallCue("fall")  # the fall read from geometry the model carries (pipeline/falls.py), measured with it
TORCH_THREADS = 1  # a fixed thread count keeps the float sums, and so the weights, the same on every machine
LICENSE = "MIT (GMDCSA24, (c) 2024 Ekram Alam); the weights: trained by ActionLSTM, AGPL-3.0-or-later like the project"
CITATION = (
    'E. Alam, A. Sufian, P. Dutta, M. Leo, I. A. Hameed, "GMDCSA24: A Dataset for Human Fall Detection in Videos", Data in Brief, 2024'
)
# The training recipe of the built-in model (and of its leave-one-subject-out measurement).
# Pinned in full, so a change of the project's defaults does not change the shipped weights.
RECIPE = dict(
    pre=PreprocessConfig(window=120, fps=25.0, min_frames=25, score_feature="mask", distances=False, slow_motion=0),
    train=TrainConfig(epochs=20, batch_size=64, seed=SEED, min_val_clips=10**9, label_smoothing=0.0, min_epoch_windows=512, **ONE_WIDE),
    augment=AugmentConfig(
        short_crop_prob=0.0, speed_range=(0.85, 1.15), drop_joint_prob=0.0, yaw_degrees=0.0, pitch_degrees=0.0, forward_speed=0.0
    ),
)


@dataclass
class Segment:
    label: str  # lower case: "falling", "sitting", "sleeping", ...
    start: float
    end: float


def parse_segments(text: str) -> list[Segment]:
    """GMDCSA24's class column: `Falling (SW)[3.4 to 6]; Sitting[0 to 3.4]`, a label with one or more
    `a to b` ranges in brackets (`Standing[0 to 0.5; 4.2 to 6.5]`), written loosely (spaces, stray
    `:`, ranges given end first)."""
    segments = []
    for label, ranges in re.findall(r"([A-Za-z][A-Za-z ]*?)\s*(?:\([A-Z]{2}\))?\s*\[([^\]]*)\]", text):
        for part in ranges.split(";"):
            if match := re.match(r"\s*([\d.]+)\s*to\s*([\d.]+)\s*$", part):
                a, b = float(match[1]), float(match[2])
                segments.append(Segment(label.strip().lower(), min(a, b), max(a, b)))
    return segments


def read_annotations(folder: Path) -> dict[str, list[Segment]]:
    """`S{s}_{Fall,ADL}_{NN}` -> its segments, from `Subject{s}_{Fall,ADL}.csv` (one row per clip `NN.mp4`)."""
    found = {}
    for path in sorted(folder.glob("Subject*_*.csv")):
        subject, kind = re.match(r"Subject(\d+)_(\w+)\.csv", path.name).groups()
        with open(path, newline="", encoding="utf-8-sig") as rows:
            for row in csv.reader(rows):
                if row and (clip := re.match(r"\s*(\d+)\.mp4", row[0])):
                    found[f"S{subject}_{kind}_{clip[1]}"] = parse_segments(",".join(row[1:]))
    return found


def read_floor_times(path: Path = FLOOR_TIMES) -> dict[str, float]:
    """Clip -> the second it first shows the person on the floor (falls_floor.csv, read by hand:
    GMDCSA24's own segments run a fall to the end of its clip)."""
    with open(path, newline="", encoding="utf-8") as rows:
        return {row["clip"]: float(row["floor_seconds"]) for row in csv.DictReader(line for line in rows if not line.startswith("#"))}


def after_start(times: list[float], start: float | None) -> list[float]:
    """The times of a clip's events that catch its fall starting at `start` (none without a fall):
    those at or after the labelled start, less EARLY."""
    return [t for t in times if start is not None and t >= start - EARLY]


def fall_start(segments: list[Segment]) -> float | None:
    starts = [s.start for s in segments if s.label.startswith("fall")]
    return min(starts) if starts else None


def posture(segments: list[Segment], t: float) -> str | None:
    """The posture class of the segments covering time `t` (the first of `POSTURES` that does)."""
    covering = {s.label for s in segments if s.start <= t <= s.end}
    return next((POSTURES[name] for name in POSTURES if name in covering), None)


def window_label(segments: list[Segment], start: float, end: float) -> str | None:
    """The class of a live window over [start, end] seconds of a clip, or None when it is unclear."""
    onset = fall_start(segments)
    if onset is not None and end >= onset:
        if start <= onset and onset + FALL_SEEN <= end <= onset + FALL_LAST:
            return "fall"
        if start >= onset + DOWN_AFTER:
            return "lying"
        return None
    return posture(segments, end)


def windows_of(name: str, annotation: dict, segments: list[Segment], seconds: float, min_seconds: float) -> list[tuple[str, dict]]:
    """(class, clip) per live window of one video's main person; plus its descent, slowed, as lying down."""
    fps = float(annotation["fps"])
    keypoint, score = annotation["keypoint"][:1], annotation["keypoint_score"][:1]
    seen = np.flatnonzero((score[0].astype(np.float32) > 0.05).any(-1))
    if not len(seen):
        return []

    def clip(tag: str, first: int, last: int, rate: float = fps) -> dict:
        return {
            "frame_dir": f"{name}@{tag}",
            "img_shape": annotation["img_shape"],
            "original_shape": annotation["original_shape"],
            "total_frames": last - first + 1,
            "keypoint": keypoint[:, first : last + 1],
            "keypoint_score": score[:, first : last + 1],
            "fps": rate,
        }

    found, onset = [], fall_start(segments)
    for end in np.arange(seen[0] / fps + min_seconds, seen[-1] / fps + 1e-6, WINDOW_STEP):  # ends on frames that exist
        last = int(round(end * fps))
        first = max(int(seen[0]), last - int(round(seconds * fps)) + 1)
        if last <= first or not score[0, last].any():
            continue  # live windows end on a frame that shows the person
        if (label := window_label(segments, first / fps, last / fps)) is not None:
            found.append((label, clip(f"{end:.1f}", first, last)))
        if onset is not None and first / fps < onset + DOWN_AFTER <= end - min_seconds:
            # the same moment for someone first seen once down: lying, the descent out of view
            found.append(("lying", clip(f"{end:.1f}down", int(np.ceil((onset + DOWN_AFTER) * fps)), last)))
    if onset is not None:
        first, last = max(int(seen[0]), int((onset - 0.5) * fps)), min(int(seen[-1]), int((onset + 1.5) * fps))
        for speed in SLOW:
            if last - first >= min_seconds * fps * speed:
                found.append(("lying", clip(f"slow{speed:g}", first, last, fps * speed)))
    return found


def window_pickle(skeletons: dict, annotations: dict[str, list[Segment]], out: Path, pre: PreprocessConfig) -> dict[str, int]:
    """Every video's windows as the clips of a UCF101-format pickle at `out`; splits `train{s}` (all
    subjects but s), `test{s}` (none: held-out clips are run live) and `train` (everyone). Returns
    the windows per class."""
    from actionlstm.pickle_io import dump_pickle_like_mmcv

    records, subjects = [], {}
    for annotation in skeletons["annotations"]:
        name = annotation["frame_dir"].split("/")[-1]
        if name not in annotations:
            continue
        for label, record in windows_of(name, annotation, annotations[name], pre.window / pre.fps, (pre.min_frames - 1) / pre.fps):
            records.append({**record, "label": CLASSES.index(label)})
            subjects.setdefault(name.split("_")[0], []).append(record["frame_dir"])
    split = {"train": [r["frame_dir"] for r in records]}
    for subject in subjects:
        split[f"train{subject}"] = [d for other, dirs in subjects.items() if other != subject for d in dirs]
    dump_pickle_like_mmcv({"split": split, "annotations": records}, out)
    return {name: sum(r["label"] == k for r in records) for k, name in enumerate(CLASSES)}


def extract(data: Path, out: Path) -> dict:
    """Skeletons of every clip under data/fall and data/adl, with `actionlstm extract`'s own stage and cache."""
    from actionlstm.pickle_io import load_pickle
    from actionlstm.videoset import find_videos
    from pipeline.extract.dataset import extract_dataset
    from pipeline.settings import PoseSettings

    videos = find_videos(data)
    videos.videos = [v for v in videos.videos if v.path.parent.name in ("fall", "adl")]
    extract_dataset(videos, out, PoseSettings(), test=r"^$")
    return load_pickle(out)


def train_model(pickle: Path, split: str, out: Path) -> None:
    from actionlstm.dataset import load_dataset
    from actionlstm.device import resolve_device
    from actionlstm.train import train

    dataset = load_dataset(pickle, use_cache=False)
    train(
        dataset,
        dataset.split_indices(split),
        CLASSES,
        out,
        resolve_device("cpu"),
        RECIPE["train"],
        pre=RECIPE["pre"],
        aug=RECIPE["augment"],
    )


def add_fall_cue(checkpoint: Path) -> None:
    """Record FALL in a trained checkpoint, so the live pipeline reads falls as the shipped model does."""
    from actionlstm.checkpoint import atomic_torch_save, read_torch_file

    payload = read_torch_file(checkpoint, "checkpoint")
    payload["meta"]["fall"] = FALL.to_dict()
    atomic_torch_save(payload, checkpoint)


def live_events(rec, video: Path) -> tuple[list, float]:
    """The fall events `actionlstm run VIDEO --checkpoint falls --alert fall` fires with recognizer
    `rec` (each stream starts afresh; the rule is the shipped model's, ALERT), and the share of
    labelled frames whose top-1 is fall."""
    alerts = rec.alerts([AlertRule("fall", **ALERT["fall"])])
    events, labelled, falling = [], 0, 0
    for result in rec.stream(str(video)):
        events += alerts.update(result)
        for person in result.persons:
            if person.top5 and not person.uncertain:
                labelled += 1
                falling += person.top5[0].label == "fall"
    return events, falling / max(labelled, 1)


def loso_models(pickle: Path, folder: Path) -> dict[str, Path]:
    """Subject -> the model trained without them (this recipe, with FALL), in `folder`; a model
    already there is kept (scripts/camera_study.py replays the same four through other cameras)."""
    from actionlstm.pickle_io import load_pickle

    models = {}
    for split in sorted(s for s in load_pickle(pickle)["split"] if re.fullmatch(r"trainS\d+", s)):
        subject = split.removeprefix("train")
        models[subject] = checkpoint = folder / f"loso_{subject}.pth"
        if not checkpoint.exists():
            started = time.perf_counter()
            train_model(pickle, split, checkpoint)
            add_fall_cue(checkpoint)
            print(f"{subject}: trained without it in {time.perf_counter() - started:.0f} s", flush=True)
    return models


def replay_held_out(
    data: Path,
    annotations: dict[str, list[Segment]],
    models: dict[str, Path],
    seen: Callable[[Path], Path] = lambda video: video,
    pose_backend: str = "auto",
) -> dict:
    """Each subject's clips run live through the model trained without them, as `run CLIP --checkpoint
    falls --alert fall` runs them (`pose_backend` auto: INT8 on the CPU where nncf is installed, as
    `run` does); `seen(clip)` is the file played: the clip itself, or the clip as another camera
    would show it (scripts/camera_study.py)."""
    from pipeline.recognizer import ActionRecognizer

    clips, floor = [], read_floor_times()
    for subject, checkpoint in models.items():
        rec = ActionRecognizer(str(checkpoint), device="cpu", draw=False, pose_backend=pose_backend)  # one pose stage for the subject
        for video in sorted((data / "fall").glob(f"{subject}_*.mp4")) + sorted((data / "adl").glob(f"{subject}_*.mp4")):
            events, share = live_events(rec, seen(video))
            onset = fall_start(annotations.get(video.stem, []))
            is_fall = video.parent.name == "fall"
            after = after_start([e.time for e in events], onset)
            clip = {
                "video": video.name,
                "fall": is_fall,
                "events": [round(e.time, 2) for e in events],
                "fall_start": onset,
                "caught": bool(after) if is_fall else None,
                "false_alarm": bool(events) if not is_fall else len(after) < len(events),
                "delay": round(after[0] - floor[video.stem], 2) if is_fall and after else None,  # after reaching the floor
                "fall_frames": round(share, 3),
            }
            clips.append(clip)
            print(
                f"  {video.name:<18} events at {clip['events']} s, fall start {onset}: "
                f"{'caught' if clip['caught'] else 'MISSED' if is_fall else 'false alarm' if clip['false_alarm'] else 'quiet'}",
                flush=True,
            )
    falls = [c for c in clips if c["fall"]]
    adls = [c for c in clips if not c["fall"]]
    delays = [c["delay"] for c in falls if c["delay"] is not None]
    return {
        "fall_recall": sum(c["caught"] for c in falls) / len(falls),
        "falls": len(falls),
        "false_alarm_rate": sum(c["false_alarm"] for c in adls) / len(adls),
        "daily_activities": len(adls),
        "early_alarms_in_fall_clips": sum(c["false_alarm"] for c in falls),
        "delay_median_s": float(np.median(delays)) if delays else None,
        "delay_max_s": max(delays) if delays else None,
        "clips": clips,
    }


def build_falls(data: Path, out: Path, loso: bool) -> None:
    import torch

    torch.set_num_threads(TORCH_THREADS)
    from actionlstm.checkpoint import atomic_torch_save, read_torch_file

    runs = ROOT / "runs" / "builtin_falls"
    runs.mkdir(parents=True, exist_ok=True)
    annotations = read_annotations(data / "annotations")
    pre = RECIPE["pre"]
    with tempfile.TemporaryDirectory(prefix="builtin-falls-") as tmp:
        folder = Path(tmp)
        skeletons = extract(data, folder / "skeletons.pkl")
        counts = window_pickle(skeletons, annotations, folder / "windows.pkl", pre)
        print(f"windows per class: {counts}", flush=True)
        measured = None
        if loso:
            measured = replay_held_out(data, annotations, loso_models(folder / "windows.pkl", folder))
            (runs / "loso.json").write_text(json.dumps(measured, indent=1) + "\n")
            print(
                f"leave one subject out: {measured['fall_recall']:.0%} of {measured['falls']} falls caught, "
                f"{measured['false_alarm_rate']:.0%} of {measured['daily_activities']} daily activities raised a fall event, "
                f"median delay {measured['delay_median_s']} s after reaching the floor",
                flush=True,
            )
        train_model(folder / "windows.pkl", "train", folder / "falls.pth")
        payload = read_torch_file(folder / "falls.pth", "checkpoint")
    payload["state_dict"] = {k: v.half() for k, v in payload["state_dict"].items()}  # a few MB less to ship; loaded as float32
    videos = len(skeletons["annotations"])
    payload["meta"]["alert_defaults"] = ALERT
    payload["meta"]["fall"] = FALL.to_dict()
    payload["meta"]["builtin"] = {
        "description": "falls and what people do at home: fall, lying, sitting, standing, walking (alert on fall)",
        "alert": "fall",
        "data": f"GMDCSA24: {videos} clips of 4 subjects at home ({sum(counts.values())} live-like windows: {counts}), "
        "python scripts/train_builtin.py falls",
        "license": LICENSE,
        "citation": CITATION,
        "measured": None
        if measured is None
        else (
            f"leave one subject out (4 trainings): {measured['fall_recall']:.0%} of {measured['falls']} falls caught, "
            f"{measured['false_alarm_rate']:.0%} of {measured['daily_activities']} daily activities with a fall event, "
            f"event {measured['delay_median_s']:.1f} s after the person reached the floor (median), "
            f"alerting at {AlertRule('fall', **ALERT['fall'])} with the fall cue"
        ),
    }
    atomic_torch_save(payload, out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["falls"])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "falls")
    parser.add_argument("--out", type=Path, default=ROOT / "actionlstm" / "models" / "falls.pth")
    parser.add_argument("--no-loso", dest="loso", action="store_false", help="skip the leave-one-subject-out measurement")
    args = parser.parse_args()
    build_falls(args.data, args.out, args.loso)


if __name__ == "__main__":
    main()
