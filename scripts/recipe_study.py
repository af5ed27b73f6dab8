"""The training recipe before and after the short-clip changes (issue 17), and what each change gives.

    python scripts/jhmdb_to_pickle.py DD-Net/data/JHMDB /work/ext17/jhmdb.pkl
    python scripts/recipe_study.py --jhmdb /work/ext17/jhmdb.pkl                 # test figures, splits 1-3
    python scripts/recipe_study.py --jhmdb /work/ext17/jhmdb.pkl --cv --ablation # choosing: inside train splits only
    python scripts/recipe_study.py --own ../shared/data/actions --own ../shared/data/falls:'/S(\\d+)_'
    python scripts/recipe_study.py --cross-view ../shared/data/mocap/hdm05 [--cv]      # docs/views.md

"before" is the recipe as it was (no distances, one velocity, epochs of at least 512 windows, one
BiLSTM of 128 units); "short-clip features" adds the distances, the slow velocity and epochs of 1024
windows; "after" is today's default (also five one-layer members of 64 units, standardised inputs, joints
dropped from training windows, epochs of 1536 windows, and since issue 37 the camera turned and tilted
in training; "after, epochs of 1024 windows" and "after, no view augmentation" are earlier defaults).
`--ablation` adds "after" with one change at a time: a part of it undone, or a lever tried on top of it.
`--cv` never looks at a test split: JHMDB split N trains on the clips of trainN that split M
(M = N % 3 + 1) also trains on, and is scored on those of trainN that split M tests on. `--own`
extracts a video folder (`actionlstm extract`, cached) and holds out each group in turn (regex after
the colon, default the actor `P(\\d)T`). `--cross-view` renders HDM05's motion capture through
virtual cameras and trains on some views and scores others, by actor (scripts/cross_view.py; with `--cv`
the train actors only). `--fold TEXT` keeps the folds whose name holds TEXT. Prints a table per data
set; writes --out as JSON.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cross_view  # scripts/, beside this file
import numpy as np

from actionlstm.augment import AugmentConfig
from actionlstm.checkpoint import Classifier, load_checkpoint
from actionlstm.dataset import SkeletonDataset, load_dataset
from actionlstm.device import resolve_device
from actionlstm.inference import predict_clips
from actionlstm.labels import read_label_file
from actionlstm.preprocess import PreprocessConfig
from actionlstm.reports import classification_metrics
from actionlstm.train import ONE_WIDE, TrainConfig, train
from actionlstm.videoset import find_videos, frame_dirs, group_of

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Recipe:
    pre: PreprocessConfig = field(default_factory=PreprocessConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    aug: AugmentConfig = field(default_factory=AugmentConfig)


AFTER = Recipe()
NO_VIEW = {"yaw_degrees": 0.0, "pitch_degrees": 0.0, "forward_speed": 0.0}  # no camera turned or tilted (before issue 37)
NO_JOINT_DROP = AugmentConfig(drop_joint_prob=0.0, **NO_VIEW)
SHORT_CLIP = Recipe(train=TrainConfig(min_epoch_windows=1024, **ONE_WIDE), aug=NO_JOINT_DROP)
BEFORE = Recipe(PreprocessConfig(distances=False, slow_motion=0), TrainConfig(min_epoch_windows=512, **ONE_WIDE), NO_JOINT_DROP)


def _aug(**changes: object) -> Recipe:
    return replace(AFTER, aug=replace(AFTER.aug, **changes))


ABLATION = {
    "after, one member of 128": replace(AFTER, train=replace(AFTER.train, hidden=128, members=1)),
    "after, not standardised": replace(AFTER, train=replace(AFTER.train, standardize=False)),
    "after, old schedule": replace(AFTER, train=replace(AFTER.train, min_epoch_windows=BEFORE.train.min_epoch_windows)),
    "after, no distances": replace(AFTER, pre=replace(AFTER.pre, distances=False)),
    "after, no slow motion": replace(AFTER, pre=replace(AFTER.pre, slow_motion=0)),
    "after, no joint drop": _aug(drop_joint_prob=0.0),
    "after, speeds 0.8-1.25x": _aug(speed_range=(0.8, 1.25)),
    "after, no speed change": _aug(speed_range=(1.0, 1.0)),
    "after, three members": replace(AFTER, train=replace(AFTER.train, members=3)),
    "after, three members of two layers": replace(AFTER, train=replace(AFTER.train, members=3, layers=2)),
    "after, five members of two layers": replace(AFTER, train=replace(AFTER.train, layers=2)),
    "after, seven members": replace(AFTER, train=replace(AFTER.train, members=7)),
    "after, weight decay 0.05": replace(AFTER, train=replace(AFTER.train, weight_decay=0.05)),
    "after, 30 epochs": replace(AFTER, train=replace(AFTER.train, epochs=30)),
    "after, epochs of 1024 windows": replace(AFTER, train=replace(AFTER.train, min_epoch_windows=SHORT_CLIP.train.min_epoch_windows)),
    # The view levers (issue 37, docs/views.md), each undone or changed on its own.
    "after, no view augmentation": _aug(**NO_VIEW),  # the default of issue 17
    "after, no view augmentation, no distances": replace(_aug(**NO_VIEW), pre=replace(AFTER.pre, distances=False)),
    "after, turns only": _aug(pitch_degrees=0.0, forward_speed=0.0),
    "after, no tilt": _aug(pitch_degrees=0.0),
    "after, no travel": _aug(forward_speed=0.0),
    "after, travel 2": _aug(forward_speed=2.0),
    "after, no mirroring": _aug(flip_prob=0.0),
    "after, no roll": _aug(rotate_degrees=0.0),
}


def scored(
    dataset: SkeletonDataset,
    names: list[str],
    fit: np.ndarray,
    test: np.ndarray,
    recipe: Recipe,
    folder: Path,
    elsewhere: dict[str, tuple[SkeletonDataset, np.ndarray]] | None = None,
) -> dict:
    """Train `recipe` on `fit` (on the CPU, as the 2-core figures are), score on `test`: clip top-1, top-5,
    mean class; and the same model on each of `elsewhere` (name -> clips of another data set, e.g. the
    test clips as another camera showed them) under "elsewhere"."""
    started = time.perf_counter()
    out = folder / f"model-{time.monotonic_ns()}.pth"
    train(dataset, fit, names, out, resolve_device("cpu"), recipe.train, pre=recipe.pre, aug=recipe.aug)
    seconds = time.perf_counter() - started
    clf = load_checkpoint(out)
    others = {name: {**score(clf, data, names, clips), "seconds": seconds} for name, (data, clips) in (elsewhere or {}).items()}
    return {**score(clf, dataset, names, test), "seconds": seconds, "elsewhere": others}


def score(clf: Classifier, dataset: SkeletonDataset, names: list[str], test: np.ndarray) -> dict:
    """A trained model's clip top-1, top-5 and mean class accuracy on `test`, and the clips it got wrong."""
    probs = predict_clips(clf.model, clf.preprocess, dataset, test, resolve_device("cpu"))
    predicted = probs.argmax(axis=1)
    missed = [f"{dataset.frame_dirs[i]} as {names[p]}" for i, p in zip(test, predicted) if p != dataset.labels[i]]
    return {**classification_metrics(probs, dataset.labels[test]), "missed": missed}


def recipes(ablation: bool) -> dict[str, Recipe]:
    return {"before": BEFORE, "short-clip features": SHORT_CLIP, "after": AFTER, **(ABLATION if ablation else {})}


def jhmdb_folds(dataset: SkeletonDataset, cv: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per split: (training clips, scored clips), the test split or, with `cv`, a fold inside the training split."""
    folds = {}
    for n in (1, 2, 3):
        train_n = dataset.split_indices(f"train{n}")
        if not cv:
            folds[f"split {n}"] = (train_n, dataset.split_indices(f"test{n}"))
            continue
        other = n % 3 + 1
        folds[f"split {n} (cv: trains in split {other})"] = (
            np.intersect1d(train_n, dataset.split_indices(f"train{other}")),
            np.intersect1d(train_n, dataset.split_indices(f"test{other}")),
        )
    return folds


def extracted(folder: Path, pattern: str, work: Path) -> tuple[SkeletonDataset, list[str], np.ndarray]:
    """A video folder extracted once (cached by `actionlstm extract`): its clips, class names and each clip's group."""
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"{folder.parent.name}-{folder.name}.pkl"
    cli = [sys.executable, "-m", "actionlstm"]
    subprocess.run([*cli, "extract", str(folder), "--out", str(data), "--group", pattern], check=True, stdout=subprocess.DEVNULL)
    dataset = load_dataset(data, use_cache=False)
    videos = find_videos(folder)  # the pattern is searched in each video's path, as extract's --group is
    path_of = dict(zip(frame_dirs(videos.videos, videos.class_names), (v.name for v in videos.videos)))
    group = re.compile(pattern)
    return (
        dataset,
        read_label_file(data.with_suffix(".classes.txt")),
        np.array([group_of(path_of[str(name)], group) for name in dataset.frame_dirs]),
    )


def as_cameras_see(folder: Path, clips: set[str], cameras: list[str], store: Path) -> dict[str, Path]:
    """Camera -> a copy of the video folder (class subfolders) as that camera of scripts/camera_study.py
    would have shown each video extracted as one of `clips`, written once (lossless) under `store` and
    kept, so that extraction's cache finds them on the next run."""
    import camera_study

    videos = find_videos(folder)
    copies = {}
    for camera in cameras:
        copies[camera] = store / "cameras" / camera / folder.name
        for video, clip in zip(videos.videos, frame_dirs(videos.videos, videos.class_names)):
            if clip not in clips:  # not a video, or nobody in it
                continue
            target = copies[camera] / Path(video.name).with_suffix(".avi")
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # a run cut short leaves no half-written video
                    Path(camera_study.as_seen_by(camera, video.path, Path(tmp))).replace(target)
    return copies


def own_folds(
    folder: Path,
    pattern: str,
    cameras: list[str],
    store: Path,
) -> tuple[SkeletonDataset, list[str], dict[str, tuple[np.ndarray, np.ndarray]], dict[str, dict[str, tuple[SkeletonDataset, np.ndarray]]]]:
    """Extract a video folder once (cached by `actionlstm extract` under `store`) and hold out each group in turn:
    the clips, class names, folds, and per fold and camera (`cameras` of scripts/camera_study.py) that
    camera's copy of the data with the fold's held-out group in it: the models train on the original
    clips and are also scored on the held-out people as another camera shows them."""
    dataset, names, groups = extracted(folder, pattern, store / "extracted")
    folds = {f"{folder.name}: hold out {g}": (np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in np.unique(groups)}
    elsewhere: dict[str, dict[str, tuple[SkeletonDataset, np.ndarray]]] = {fold: {} for fold in folds}
    for camera, copy in as_cameras_see(folder, set(dataset.frame_dirs.tolist()), cameras, store).items():
        seen, seen_names, seen_groups = extracted(copy, pattern, store / "extracted")
        if seen_names != names:
            raise SystemExit(f"{copy}: classes {seen_names}, the originals' {names}")
        for fold, (_, test) in folds.items():
            elsewhere[fold][camera] = (seen, np.flatnonzero(np.isin(seen_groups, np.unique(groups[test]))))
    return dataset, names, folds, elsewhere


def table(title: str, rows: dict[str, dict[str, dict]]) -> str:
    """One line per recipe, one column per fold (clip top-1), plus the mean and the training seconds."""
    folds = list(next(iter(rows.values())))
    lines = [f"\n{title}", f"{'recipe':<28}" + "".join(f"{f[:24]:>26}" for f in folds) + f"{'mean':>8}{'train s':>9}"]
    for name, per_fold in rows.items():
        top1 = [per_fold[f]["top1"] for f in folds]
        seconds = np.mean([per_fold[f]["seconds"] for f in folds])
        lines.append(f"{name:<28}" + "".join(f"{t:>26.3f}" for t in top1) + f"{np.mean(top1):>8.3f}{seconds:>9.0f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jhmdb", type=Path, help="the pickle scripts/jhmdb_to_pickle.py wrote")
    parser.add_argument("--own", action="append", default=[], help="FOLDER[:GROUP_REGEX] of action subfolders of videos")
    parser.add_argument(
        "--cross-view", type=Path, help="HDM05's folder (../shared/data/mocap/hdm05): front / back views to side views, by actor"
    )
    parser.add_argument(
        "--cv", action="store_true", help="score on folds inside the training data (JHMDB's train splits, HDM05's train actors)"
    )
    parser.add_argument("--ablation", action="store_true", help="also 'after' with one change at a time (a part undone or a lever added)")
    parser.add_argument("--splits", default="1,2,3", help="JHMDB splits to run")
    parser.add_argument(
        "--camera",
        action="append",
        default=[],
        help="--own: also score the held-out people as this camera of "
        "scripts/camera_study.py shows them (mirrored, rolled-10, looking-down, ...; repeatable)",
    )
    parser.add_argument("--fold", action="append", default=[], help="keep only folds whose name holds this text (repeatable)")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "runs" / "recipe_study",
        help="where renders, extractions and camera copies are kept",
    )
    parser.add_argument(
        "--recipe", action="append", default=[], help="a recipe to run, by its name in the table (repeat for more; default: all)"
    )
    parser.add_argument("--out", type=Path, default=Path("recipe_study.json"))
    args = parser.parse_args()
    chosen = recipes(args.ablation)
    if unknown := [name for name in args.recipe if name not in chosen]:  # before any extraction or training
        parser.error(f"no recipe {unknown[0]!r}: one of {', '.join(map(repr, chosen))}")
    if args.camera:
        import camera_study

        if unknown := [name for name in args.camera if name not in camera_study.CAMERAS]:
            parser.error(f"no camera {unknown[0]!r}: one of {', '.join(camera_study.CAMERAS)}")
    if args.recipe:
        chosen = {name: chosen[name] for name in args.recipe}

    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sets = []
        if args.jhmdb:
            dataset = load_dataset(args.jhmdb)
            wanted = {f"split {n}" for n in args.splits.split(",")}
            folds = {k: v for k, v in jhmdb_folds(dataset, args.cv).items() if k.split(" (")[0] in wanted}
            sets.append(
                (
                    "JHMDB (14 classes, ground-truth joints)" + (", cv inside train" if args.cv else ", test"),
                    dataset,
                    read_label_file(args.jhmdb.with_suffix(".classes.txt")),
                    folds,
                    {},
                )
            )
        for spec in args.own:
            folder, _, pattern = spec.partition(":")
            dataset, names, folds, elsewhere = own_folds(Path(folder), pattern or r"P(\d)T", args.camera, args.work)
            sets.append((f"{Path(folder).name} (clip top-1, each group held out)", dataset, names, folds, elsewhere))
        if args.cross_view:
            data = cross_view.render(args.cross_view, args.work, args.cv)
            dataset = load_dataset(data)
            sets.append(
                (
                    f"HDM05 through virtual cameras (11 motions), {'cv: train actors' if args.cv else 'test actors'}",
                    dataset,
                    read_label_file(data.with_suffix(".classes.txt")),
                    cross_view.folds(dataset, cross_view.actors_of(data), args.cv),
                    {},
                )
            )
        for title, dataset, names, folds, elsewhere in sets:
            if args.fold:
                folds = {name: fold for name, fold in folds.items() if any(text in name for text in args.fold)}
            rows: dict[str, dict] = {}
            for name, recipe in chosen.items():
                rows[name] = {}
                for fold, (fit, test) in folds.items():
                    rows[name][fold] = scored(dataset, names, fit, test, recipe, work, elsewhere.get(fold))
                    for seen_by, result in {
                        "": rows[name][fold],
                        **{f", {c}": r for c, r in rows[name][fold]["elsewhere"].items()},
                    }.items():
                        print(
                            f"{title} | {name} | {fold}{seen_by}: top-1 {result['top1']:.3f}, mean class {result['mean_class_acc']:.3f} "
                            f"of {result['n']} clips ({result['seconds']:.0f} s); missed: {', '.join(result['missed']) or 'none'}",
                            flush=True,
                        )
            report[title] = rows
            print(table(title, rows), flush=True)
            for camera in args.camera if elsewhere else []:
                print(
                    table(
                        f"{title}, held-out people as the camera '{camera}' shows them",
                        {name: {fold: per_fold[fold]["elsewhere"][camera] for fold in per_fold} for name, per_fold in rows.items()},
                    ),
                    flush=True,
                )
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
