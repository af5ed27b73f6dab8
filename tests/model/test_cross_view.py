"""The cross-view study's folds (scripts/cross_view.py, issue 37): the choice (`--cv`) never looks at a
test actor, a held-out actor is never trained on, and each fold trains on one set of views and scores
another."""

import importlib.util

import numpy as np

from actionlstm.dataset import SkeletonDataset
from tests.helpers import ROOT

spec = importlib.util.spec_from_file_location("cross_view", ROOT / "scripts" / "cross_view.py")
cross_view = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cross_view)

ACTORS = {"train": ["bd", "bk", "dg"], "test": ["mm", "tr"]}


def _renders() -> tuple[SkeletonDataset, list[tuple[str, str]]]:
    """Two clips per actor and view, split `<actor>/<view>` as `cross_view.render` writes them."""
    owners = [(actor, view) for actor in ACTORS["train"] + ACTORS["test"] for view in cross_view.VIEWS for _ in range(2)]
    splits: dict[str, list[int]] = {}
    for i, (actor, view) in enumerate(owners):
        splits.setdefault(f"{actor}/{view}", []).append(i)
    n = len(owners)
    dataset = SkeletonDataset(
        frame_dirs=np.array([f"HDM_{a}_clip_{i}" for i, (a, _) in enumerate(owners)]),
        labels=np.zeros(n, np.int64),
        offsets=np.arange(n + 1, dtype=np.int64),
        keypoint=np.zeros((n, 17, 2), np.float32),
        score=np.ones((n, 17), np.float32),
        img_shapes=np.full((n, 2), 480, np.int64),
        fps=np.full(n, 30.0),
        splits={name: np.array(indices) for name, indices in splits.items()},
    )
    return dataset, owners


def test_the_choice_holds_out_each_train_actor_and_never_sees_a_test_actor():
    dataset, owners = _renders()
    folds = cross_view.folds(dataset, ACTORS, cv=True)
    assert sorted(folds) == sorted(f"{name}, {actor} held out" for name in ("to side", "all round") for actor in ACTORS["train"])
    for name, (fit, scored) in folds.items():
        held = name.split(", ")[-1].split()[0]
        trained = {owners[i] for i in fit}
        assert {a for a, _ in trained} == set(ACTORS["train"]) - {held}
        assert {owners[i][0] for i in scored} == {held}
        views = ("front/back", "side") if name.startswith("to side") else ("all round", "all round")
        assert {v for _, v in trained} == {views[0]} and {owners[i][1] for i in scored} == {views[1]}
        assert len(fit) == 2 * 2 and len(scored) == 2


def test_the_figures_train_on_the_train_actors_and_score_the_test_actors():
    dataset, owners = _renders()
    folds = cross_view.folds(dataset, ACTORS, cv=False)
    (fit, scored), (fit_round, scored_round) = folds["front/back -> side"], folds["all round"]
    assert {owners[i] for i in fit} == {(a, "front/back") for a in ACTORS["train"]}
    assert {owners[i] for i in scored} == {(a, "side") for a in ACTORS["test"]}
    assert {owners[i] for i in fit_round} == {(a, "all round") for a in ACTORS["train"]}
    assert {owners[i] for i in scored_round} == {(a, "all round") for a in ACTORS["test"]}
