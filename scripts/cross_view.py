"""Does a recipe carry over from the views it learnt to others? HDM05 through virtual cameras, by actor.

    python scripts/recipe_study.py --cross-view ../shared/data/mocap/hdm05          # test actors: the figures
    python scripts/recipe_study.py --cross-view ../shared/data/mocap/hdm05 --cv     # train actors only: the choice

Every take of HDM05 (`actionlstm.mocap`: 11 motions, 5 actors, YOLO-pose's measured noise) is rendered
through `CAMERAS` cameras of each view, the same for every take as a fixed set of cameras in a room
would be: front / back (yaw within 45 degrees of 0 or 180), side (yaw 60-120 or 240-300) and all round,
each drawn by `actionlstm.mocap.random_cameras` (heights 0.5-2.5 m, distances 2-8 m, 320-1280 pixels
wide, 10-30 fps, tilted and rolled a little). The pickle's splits name an actor and a view
(`bd/side`), so a fold is a union of them:

- test: front / back renders of the train actors (bd, bk, dg) train, side renders of the test actors
  (mm, tr) are scored; and all round, train actors to test actors, as a model that saw every view fares;
- cv: the train actors only, each held out in turn, through cameras of their own (other seeds): the
  other two's front / back renders train and the held-out actor's side renders are scored; and all round.

Each render is written once under the study's work folder and reused.
"""

from pathlib import Path

import numpy as np

from actionlstm.dataset import SkeletonDataset
from actionlstm.mocap import list_takes, random_cameras, render_dataset
from actionlstm.pickle_io import dump_pickle_like_mmcv

VIEWS = {
    "front/back": ((-45.0, 45.0), (135.0, 225.0)),
    "side": ((60.0, 120.0), (240.0, 300.0)),
    "all round": ((0.0, 360.0),),
}
CAMERAS = 10  # per view
SEEDS = {"test": (1, 2, 3), "cv": (11, 12, 13)}  # per view, as VIEWS orders them: the test's are docs/mocap.md's example's
SEEN_FROM, TESTED_FROM = "front/back", "side"


def render(hdm05: Path, work: Path, cv: bool) -> Path:
    """Every take through the cameras of each view (the cv set or the test set), once; splits
    `<actor>/<view>`, plus the classes and which actors are HDM05's train and test ones. Returns the pickle."""
    purpose = "cv" if cv else "test"
    out = work / f"hdm05_{purpose}_{CAMERAS}_cameras.pkl"
    if out.exists():
        return out
    takes = list_takes(hdm05)
    if not takes:  # before anything is written
        raise SystemExit(f"{hdm05}: no HDM05 takes in it (train/ and test/, a folder of HDM_*_120.amc per motion)")
    view_of = {camera: view for (view, yaws), seed in zip(VIEWS.items(), SEEDS[purpose]) for camera in random_cameras(CAMERAS, seed, yaws)}
    actors = {part: sorted({t.actor for t in takes if t.amc.parent.parent.name == part}) for part in ("train", "test")}
    cast = actors["train"] if cv else actors["train"] + actors["test"]
    data = render_dataset(takes, list(view_of), lambda take, camera: f"{take.actor}/{view_of[camera]}" if take.actor in cast else None)
    work.mkdir(parents=True, exist_ok=True)
    dump_pickle_like_mmcv(data, out)
    out.with_suffix(".classes.txt").write_text("\n".join(sorted({t.motion for t in takes})) + "\n")
    out.with_suffix(".actors.txt").write_text("".join(f"{part} {' '.join(names)}\n" for part, names in actors.items()))
    return out


def actors_of(data: Path) -> dict[str, list[str]]:
    """`{"train": [...], "test": [...]}`: the actors of HDM05's train/ and test/ folders, as `render` wrote them."""
    return {line.split()[0]: line.split()[1:] for line in data.with_suffix(".actors.txt").read_text().splitlines()}


def clips(dataset: SkeletonDataset, actors: list[str], view: str) -> np.ndarray:
    """Indices of the renders of these actors through cameras of this view."""
    return np.concatenate([dataset.split_indices(f"{actor}/{view}") for actor in actors])


def folds(dataset: SkeletonDataset, actors: dict[str, list[str]], cv: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fold name -> (training clips, scored clips): front / back to side, then all round; by actor."""
    if not cv:
        train, test = actors["train"], actors["test"]
        return {
            f"{SEEN_FROM} -> {TESTED_FROM}": (clips(dataset, train, SEEN_FROM), clips(dataset, test, TESTED_FROM)),
            "all round": (clips(dataset, train, "all round"), clips(dataset, test, "all round")),
        }
    out = {}
    for view, scored_view, name in ((SEEN_FROM, TESTED_FROM, "to side"), ("all round", "all round", "all round")):
        for held in actors["train"]:
            others = [a for a in actors["train"] if a != held]
            out[f"{name}, {held} held out"] = (clips(dataset, others, view), clips(dataset, [held], scored_view))
    return out
