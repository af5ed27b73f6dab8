"""What the keypoint scores add, and what a change of pose model does to them.

    python scripts/score_ablation.py --classes 8 --epochs 8                                # generated sample pickle
    python scripts/score_ablation.py --data actions.pkl --folds 'P(\\d)T' --epochs 20       # real clips, by actor
    python scripts/score_ablation.py --data falls.pkl --folds '^S(\\d+)_' --epochs 20       # real clips, by subject

UCF101's skeletons carry HRNet heatmap maxima as scores; the live pipeline and `actionlstm extract`
carry YOLO-pose confidences, distributed differently. Each variant below trains with the same seed
and is scored (clip top-1) on its test clips as they are and with their scores shifted as another
detector would give them: monotone remaps of every score above 0, or noise. Undetected joints stay
0, but a shifted score may cross the missing-joint threshold (0.5+0.5s lifts the joints YOLO scores
near 0, outside the picture, above it), so which joints count as seen shifts too.

    raw       the score channel is the detector's score (the model input before this study)
    mask      the score channel is 1 for a seen joint, 0 for a missing one
    raw+aug   raw, trained with random per-window score remaps (`augment.remap_scores`)
    mask+aug  mask, trained with the same remaps: today's default

Without --data a sample pickle (`actionlstm.synthetic`) is generated and split train1/test1. With
--folds REGEX every group (the regex's first group in each clip's name) is held out in turn and the
test clips of all folds are pooled; otherwise the pickle's train1/test1 split is used.
"""

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from actionlstm.augment import AugmentConfig
from actionlstm.checkpoint import load_checkpoint
from actionlstm.dataset import SkeletonDataset, load_dataset
from actionlstm.device import resolve_device
from actionlstm.inference import predict_clips
from actionlstm.labels import default_class_names
from actionlstm.preprocess import PreprocessConfig
from actionlstm.synthetic import write_sample_pickle
from actionlstm.train import TrainConfig, train

NO_REMAP = AugmentConfig(score_gamma_range=(1.0, 1.0), score_floor_range=(0.0, 0.0), score_noise=0.0)
VARIANTS = {
    "raw": (PreprocessConfig(score_feature="raw"), NO_REMAP),
    "mask": (PreprocessConfig(score_feature="mask"), NO_REMAP),
    "raw+aug": (PreprocessConfig(score_feature="raw"), AugmentConfig()),
    "mask+aug": (PreprocessConfig(score_feature="mask"), AugmentConfig()),
}
# Test-time score shifts, applied to scores above 0. "sigmoid" (a sharper, YOLO-like split into
# sure and unsure joints) is outside the family raw+aug trains with; the others are inside it.
SHIFTS = {
    "clean": lambda s, rng: s,
    "s^2": lambda s, rng: s**2,
    "0.5+0.5s": lambda s, rng: 0.5 + 0.5 * s,
    "noise0.1": lambda s, rng: np.clip(s + rng.normal(0, 0.1, s.shape), 0, 1),
    "sigmoid": lambda s, rng: 1 / (1 + np.exp(-12 * (s - 0.5))),
}


def shifted(dataset: SkeletonDataset, shift: str, seed: int) -> SkeletonDataset:
    """The data set with every detected joint's score remapped; undetected joints (score 0) stay 0."""
    score = dataset.score
    remapped = SHIFTS[shift](score.astype(np.float64), np.random.default_rng(seed))
    return replace(dataset, score=np.where(score > 0, remapped, 0.0).astype(np.float32))


def folds(dataset: SkeletonDataset, regex: str | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, train indices, test indices): each group held out in turn, or the pickle's train1/test1."""
    if regex is None:
        return [("test1", dataset.split_indices("train1"), dataset.split_indices("test1"))]
    groups = np.array([m.group(1) if (m := re.search(regex, str(name))) else "" for name in dataset.frame_dirs])
    if (groups == "").any():
        sys.exit(f"--folds {regex!r} names no group in '{dataset.frame_dirs[groups == ''][0]}'")
    everything = np.arange(len(dataset))
    return [(f"group {g}", everything[groups != g], everything[groups == g]) for g in np.unique(groups)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a skeleton pickle (default: a generated sample pickle)")
    parser.add_argument("--folds", help="regex whose first group names each clip's group; each group is held out in turn")
    parser.add_argument("--classes", type=int, default=8, help="classes of the generated pickle")
    parser.add_argument("--clips-per-class", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    device = resolve_device(args.device)

    source = str(args.data) if args.data else f"generated sample pickle ({args.classes} classes x {args.clips_per_class} clips)"
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            args.data = Path(tmp) / "sample.pkl"
            write_sample_pickle(args.data, num_classes=args.classes, clips_per_class=args.clips_per_class, frames=(60, 200), seed=args.seed)
        dataset = load_dataset(args.data, use_cache=False)
        names = default_class_names(dataset.num_classes)
        results = {}
        for variant in args.variants.split(","):
            pre, aug = VARIANTS[variant]
            correct = {shift: 0 for shift in SHIFTS}
            tested, started = 0, time.perf_counter()
            for fold, train_indices, test_indices in folds(dataset, args.folds):
                train(
                    dataset,
                    train_indices,
                    names,
                    Path(tmp) / f"{variant}.pth",
                    device,
                    TrainConfig(epochs=args.epochs, seed=args.seed),
                    pre,
                    aug,
                )
                clf = load_checkpoint(Path(tmp) / f"{variant}.pth", device)
                labels = dataset.labels[test_indices]
                for shift in SHIFTS:
                    probs = predict_clips(clf.model, clf.preprocess, shifted(dataset, shift, args.seed), test_indices, device)
                    correct[shift] += int((probs.argmax(-1) == labels).sum())
                tested += len(test_indices)
                print(f"{variant} {fold}: {', '.join(f'{s} {correct[s]}' for s in SHIFTS)} of {tested} so far", file=sys.stderr, flush=True)
            results[variant] = {
                **{shift: correct[shift] / tested for shift in SHIFTS},
                "clips": tested,
                "seconds": round(time.perf_counter() - started),
            }

    clips = next(iter(results.values()))["clips"]
    print(f"\n{source}: clip top-1 on {clips} test clips, {args.epochs} epochs, seed {args.seed}")
    print("| variant | " + " | ".join(SHIFTS) + " | train s |")
    print("|---|" + "---|" * (len(SHIFTS) + 1))
    for variant, row in results.items():
        print(f"| {variant} | " + " | ".join(f"{row[s]:.3f}" for s in SHIFTS) + f" | {row['seconds']} |")
    if args.out:
        args.out.write_text(json.dumps({"data": source, "epochs": args.epochs, "seed": args.seed, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
