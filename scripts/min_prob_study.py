"""How low may the top-1 probability fall before the overlay says "uncertain"? Measured on held-out data.

A model taught N actions calls every movement one of them. Train on some classes only, then feed
live-like windows of held-out clips through it: windows of the known classes that fall below a
threshold P are false alarms, windows of the classes it never saw that fall below P are caught.

Windows are made and labelled by the live runtime's own code: the clip's frames pushed at their own
rate into a `PersonBuffer`, classified every `--stride` frames once `ActionRuntime.is_ready` says
so, by `ActionRuntime.classify` (with the checkpoint's fall cue, where it carries one), and
smoothed by the runtime's `smooth`; measured without smoothing and with the live moving average
(`--smoothing`), on the same trained model.

    python scripts/min_prob_study.py --out /tmp/ms                    # generated data only
    actionlstm extract ../shared/data/actions --out /tmp/ms/actions.pkl --group 'P(\\d)T' --test 'P2T'
    python scripts/min_prob_study.py --out /tmp/ms --real /tmp/ms/actions.pkl
    actionlstm extract ../shared/data/falls --out /tmp/ms/falls.pkl --group '/S(\\d+)_'
    python scripts/min_prob_study.py --out /tmp/ms --real /tmp/ms/actions.pkl --other /tmp/ms/falls.pkl --skip-generated --skip-left-out

Generated: 8 classes, train on the train split of 5, known = their test split, unknown = every clip
of the other 3. Real: for each action left out and each actor held out (train1 vs test1), train on
the other actor's clips of the 2 known actions; known = the held-out actor's clips of those,
unknown = every clip of the left-out action. With --other (e.g. the falls/ clips extracted the same
way): train on every action of one actor, known = the other actor's clips, unknown = every --other
clip. Writes the per-window numbers to <out>/min_prob_study.json.
"""

import argparse
import json
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from actionlstm.checkpoint import load_checkpoint
from actionlstm.dataset import SkeletonDataset, load_dataset
from actionlstm.synthetic import write_sample_pickle
from actionlstm.train import TrainConfig, train
from pipeline.actions import ActionRuntime, smooth
from pipeline.buffers import PersonBuffer, TrackBuffers

ROOT = Path(__file__).resolve().parents[1]

THRESHOLDS = np.round(np.arange(0.30, 0.901, 0.05), 2)
DEVICE = torch.device("cpu")  # small models, short windows: the study is meant to run anywhere


@dataclass
class Measured:
    """Per window: the top-1 probability, and (known classes only) whether top-1 was right."""

    known_top1: np.ndarray
    known_right: np.ndarray
    unknown_top1: np.ndarray

    def __add__(self, other: "Measured") -> "Measured":
        return Measured(*(np.concatenate([a, b]) for a, b in zip(vars(self).values(), vars(other).values())))


def live_passes(dataset: SkeletonDataset, index: int, runtime: ActionRuntime, stride: int) -> tuple[np.ndarray, list]:
    """What the live runtime makes of this clip as it plays: per pass (every `stride`-th frame once
    the buffer is ready) the probabilities [passes, classes] and what the fall cue read (`FallReading`s)."""
    pre = runtime.clf.preprocess
    keypoint, score = dataset.clip(index)
    rate = dataset.clip_rate(index, pre.fps)
    height, width = (int(v) for v in dataset.img_shapes[index])
    buffer = PersonBuffer(0, TrackBuffers(pre, rate, (height, width)).capacity, (height, width))
    frames = []
    for frame in range(len(keypoint)):
        buffer.push(frame / rate, keypoint[frame], score[frame])
        if frame % stride == 0 and runtime.is_ready(buffer):
            frames.append(buffer.frames())
    return runtime.classify(frames) if frames else (np.zeros((0, len(runtime.clf.class_names)), np.float32), [])


def smoothed(passes: tuple[np.ndarray, list], smoothing: float) -> np.ndarray:
    """The runtime's running average over one person's successive passes (`smoothing` = weight of the past)."""
    probs, readings = passes
    out, previous = [], None
    for p, reading in zip(probs, readings):
        previous = smooth(previous, p, smoothing, reading is not None and reading.fell is not None)
        out.append(previous)
    return np.array(out)


def study(
    dataset: SkeletonDataset,
    known: list[int],
    train_idx: np.ndarray,
    known_idx: np.ndarray,
    unknown: tuple[SkeletonDataset, np.ndarray],
    names: list[str],
    out: Path,
    args: argparse.Namespace,
) -> dict[float, Measured]:
    """Train on `known` classes' `train_idx` clips, then measure known_idx (known) and the `unknown`
    clips (of this dataset or another), once per smoothing: the same model, so they compare."""
    remap = np.full(max(dataset.labels.max() + 1, 1), -1, np.int64)
    remap[known] = np.arange(len(known))
    subset = replace(dataset, labels=remap[dataset.labels])  # the trained classes as 0..K-1
    started = time.perf_counter()
    train(subset, train_idx, [names[k] for k in known], out, DEVICE, TrainConfig(epochs=args.epochs, seed=args.seed))
    trained = time.perf_counter()
    runtime = ActionRuntime(load_checkpoint(out, DEVICE), DEVICE)

    def played(data: SkeletonDataset, indices: np.ndarray) -> dict[int, tuple[np.ndarray, list[bool]]]:
        passes = {int(i): live_passes(data, int(i), runtime, args.stride) for i in indices}
        return {i: p for i, p in passes.items() if len(p[0])}  # clips too short for a single pass say nothing

    known_probs, unknown_probs = played(subset, known_idx), played(*unknown)
    windows = sum(len(p[0]) for p in (*known_probs.values(), *unknown_probs.values()))
    print(f"trained {len(train_idx)} clips in {trained - started:.0f} s", end=", ")
    print(f"classified {windows} windows in {time.perf_counter() - trained:.0f} s")
    measured = {}
    for smoothing in args.smoothing:
        known_p = {i: smoothed(p, smoothing) for i, p in known_probs.items()}
        unknown_top1 = np.concatenate([smoothed(p, smoothing).max(1) for p in unknown_probs.values()])
        right = np.concatenate([p.argmax(1) == subset.labels[i] for i, p in known_p.items()])
        measured[smoothing] = Measured(np.concatenate([p.max(1) for p in known_p.values()]), right, unknown_top1)
    return measured


def table(title: str, m: Measured, max_false_alarms: float) -> dict:
    """Print the share of windows marked uncertain per threshold; return it with the recommended P:
    the highest P whose false alarms stay within `max_false_alarms` (catches grow with P)."""
    known = f"{len(m.known_top1)} known-class windows ({m.known_right.mean():.1%} right)"
    print(f"\n{title}: {known}, {len(m.unknown_top1)} unknown-class windows")
    quantiles = (5, 25, 50, 75, 95)
    for name, top1 in (("known", m.known_top1), ("unknown", m.unknown_top1)):
        print(f"  {name} top-1 at " + ", ".join(f"p{q} {v:.3f}" for q, v in zip(quantiles, np.percentile(top1, quantiles))))
    print(f"{'P':>5}  {'known marked (false alarms)':>28}  {'unknown marked (caught)':>24}  {'known but wrong, marked':>24}")
    rows = []
    wrong = m.known_top1[~m.known_right]
    for p in THRESHOLDS:
        row = {
            "P": float(p),
            "false_alarms": float((m.known_top1 < p).mean()),
            "caught": float((m.unknown_top1 < p).mean()),
            "wrong_marked": float((wrong < p).mean()) if len(wrong) else float("nan"),
        }
        rows.append(row)
        wrong_marked = "-" if np.isnan(row["wrong_marked"]) else f"{row['wrong_marked']:.1%}"
        print(f"{p:5.2f}  {row['false_alarms']:28.1%}  {row['caught']:24.1%}  {wrong_marked:>24}")
    within = [r for r in rows if r["false_alarms"] <= max_false_alarms]
    best = within[-1] if within else None
    if best:
        measured = f"false alarms {best['false_alarms']:.1%}, caught {best['caught']:.1%}"
        print(f"-> highest P with false alarms <= {max_false_alarms:.0%}: {best['P']:.2f} ({measured})")
    else:
        print(f"-> no P in the table keeps false alarms <= {max_false_alarms:.0%}")
    return {"rows": rows, "recommended": best and best["P"], "windows": {k: v.tolist() for k, v in vars(m).items()}}


def tables(title: str, measured: dict[float, Measured], args: argparse.Namespace) -> dict:
    return {f"{title}, smoothing {s}": table(f"{title}, smoothing {s}", m, args.max_false_alarms) for s, m in measured.items()}


def synthetic_study(args: argparse.Namespace) -> dict:
    data = args.out / "sample8.pkl"
    names = write_sample_pickle(data, num_classes=8, clips_per_class=30, seed=args.seed)
    dataset = load_dataset(data)
    known, train_split, test_split = list(range(5)), dataset.split_indices("train1"), dataset.split_indices("test1")
    is_known = np.isin(dataset.labels, known)
    measured = study(
        dataset,
        known,
        train_split[is_known[train_split]],
        test_split[is_known[test_split]],
        (dataset, np.flatnonzero(~is_known)),
        names,
        args.out / "sample5.pth",
        args,
    )
    return tables("Generated data, 5 of 8 classes known", measured, args)


def real_study(args: argparse.Namespace) -> dict:
    dataset = load_dataset(args.real)
    names = args.real.with_suffix(".classes.txt").read_text().split()
    results, pooled = {}, {}
    for left_out in range(len(names)):
        known = [c for c in range(len(names)) if c != left_out]
        for fit, held in (("train1", "test1"), ("test1", "train1")):
            fit_idx, held_idx = dataset.split_indices(fit), dataset.split_indices(held)
            measured = study(
                dataset,
                known,
                fit_idx[np.isin(dataset.labels[fit_idx], known)],
                held_idx[np.isin(dataset.labels[held_idx], known)],
                (dataset, np.flatnonzero(dataset.labels == left_out)),
                names,
                args.out / f"real_without_{names[left_out]}_{fit}.pth",
                args,
            )
            results |= tables(f"Real: {names[left_out]} unknown, trained on {fit}, known tested on {held}", measured, args)
            pooled = {s: pooled[s] + m if s in pooled else m for s, m in measured.items()}
    return results | tables("Real, all of the above pooled", pooled, args)


def other_study(args: argparse.Namespace) -> dict:
    """Every action of --real known (trained on one actor, tested on the other), every clip of --other unknown."""
    dataset, other = load_dataset(args.real), load_dataset(args.other)
    names = args.real.with_suffix(".classes.txt").read_text().split()
    known, pooled = list(range(len(names))), {}
    for fit, held in (("train1", "test1"), ("test1", "train1")):
        measured = study(
            dataset,
            known,
            dataset.split_indices(fit),
            dataset.split_indices(held),
            (other, np.arange(len(other))),
            names,
            args.out / f"real_all_{fit}.pth",
            args,
        )
        pooled = {s: pooled[s] + m if s in pooled else m for s, m in measured.items()}
    return tables(
        f"Real: all {len(names)} actions known, every clip of {args.other.name} unknown, both actors held out in turn", pooled, args
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/min_prob_study"))
    parser.add_argument("--real", type=Path, help="a pickle from `actionlstm extract` with splits train1/test1 by actor")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--stride", type=int, default=2, help="take a window every this many frames")
    parser.add_argument(
        "--smoothing",
        type=float,
        nargs="+",
        default=[0.0, 0.6],
        help="ActionRuntime's EMA weights of the past to measure (live default 0.6)",
    )
    parser.add_argument("--max-false-alarms", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (small LSTM batches: one thread is the fastest on a busy 2-core machine)"
    )
    parser.add_argument("--other", type=Path, help="with --real: a pickle of other activities (e.g. extracted falls/), all unknown")
    parser.add_argument("--skip-generated", action="store_true")
    parser.add_argument("--skip-left-out", action="store_true", help="with --real: skip the runs that leave one action out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {} if args.skip_generated else synthetic_study(args)
    if args.real and not args.skip_left_out:
        results |= real_study(args)
    if args.real and args.other:
        results |= other_study(args)
    code = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    settings = {"code": code, **{k: str(v) for k, v in vars(args).items()}}  # trainings differ with the training code
    (args.out / "min_prob_study.json").write_text(json.dumps({"settings": settings, "studies": results}))


if __name__ == "__main__":
    main()
