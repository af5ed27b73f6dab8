"""The training recipe before and after the small-data changes, on a generated pickle of any size.

    python scripts/recipe_compare.py --classes 101 --clips-per-class 94 --epochs 3   # UCF101-sized
    python scripts/recipe_compare.py --classes 3 --clips-per-class 8 --epochs 20      # a user's few dozen

"before" puts back the settings the recipe had when it was tuned for UCF101 alone: playback speed
0.8-1.25x, 20% short crops and none starting at the person's first frame, no minimum epoch size, and
the best epoch picked on a validation hold-out of whatever size. "after" is today's default. The code
both share (crops ending on frames that show the person, class-balanced epochs, clip scores weighted
by the frames that show the person) is today's in both. Both train with the same seed on train1 and
are scored on test1 (clip top-1 and mean class accuracy).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from actionlstm.augment import AugmentConfig
from actionlstm.checkpoint import load_checkpoint
from actionlstm.dataset import load_dataset
from actionlstm.device import resolve_device
from actionlstm.inference import predict_clips
from actionlstm.reports import classification_metrics
from actionlstm.synthetic import write_sample_pickle
from actionlstm.train import TrainConfig, train

RECIPES = {
    "before": (AugmentConfig(speed_range=(0.8, 1.25), short_crop_prob=0.2, prefix_prob=0.0), {"min_val_clips": 1, "min_epoch_windows": 0}),
    "after": (AugmentConfig(), {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--clips-per-class", type=int, default=94)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="recipe_compare.json")
    args = parser.parse_args()
    device = resolve_device(args.device)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.pkl"
        names = write_sample_pickle(path, num_classes=args.classes, clips_per_class=args.clips_per_class, frames=(60, 300), seed=0)
        dataset = load_dataset(path, use_cache=False)
        test = dataset.split_indices("test1")
        for name, (aug, changes) in RECIPES.items():
            cfg = TrainConfig(epochs=args.epochs, **changes)
            start = time.perf_counter()
            summary = train(dataset, dataset.split_indices("train1"), names, Path(tmp) / f"{name}.pth", device, cfg, aug=aug)
            clf = load_checkpoint(Path(tmp) / f"{name}.pth", device)
            metrics = classification_metrics(predict_clips(clf.model, clf.preprocess, dataset, test, device), dataset.labels[test])
            results[name] = {
                "top1": round(metrics["top1"], 4),
                "mean_class_acc": round(metrics["mean_class_acc"], 4),
                "best_epoch": summary["best_epoch"],
                "val_clips": summary["val_clips"],
                "seconds": round(time.perf_counter() - start, 1),
            }
            print(
                f"{name:>6}: test top-1 {metrics['top1']:.3f}, mean class {metrics['mean_class_acc']:.3f} on {metrics['n']} clips "
                f"(epoch {summary['best_epoch']} kept, {summary['val_clips']} validation clips, {results[name]['seconds']:.0f} s)",
                flush=True,
            )
    report = {"classes": args.classes, "clips": len(dataset), "epochs": args.epochs, **results}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
