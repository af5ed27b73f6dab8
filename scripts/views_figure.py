"""The cross-view figure in docs/views.md: clip top-1 per recipe and fold, from what recipe_study wrote.

    python scripts/recipe_study.py --cross-view ../shared/data/mocap/hdm05 --ablation \\
        --recipe after --recipe 'after, no view augmentation' --out xv_test.json
    python scripts/views_figure.py xv_test.json --out docs/views.png

One group of bars per fold, one bar per recipe, each labelled with its top-1 and the clips it missed.
`--name OLD=NEW` shows a recipe under another name (e.g. a run made before the recipe's name changed).
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="JSON files recipe_study.py --out wrote")
    parser.add_argument("--name", action="append", default=[], help="OLD=NEW: show recipe OLD as NEW (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("docs/views.png"))
    args = parser.parse_args()
    names = dict(spec.split("=", 1) for spec in args.name)
    rows: dict[str, dict[str, dict]] = {}  # recipe -> fold -> result
    titles = []
    for path in args.results:
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"{path}: not a recipe_study result ({exc})") from None
        for title, recipes in report.items():
            titles.append(title)
            for recipe, folds in recipes.items():
                rows.setdefault(names.get(recipe, recipe), {}).update(folds)
    if not rows:
        raise SystemExit("no results in " + ", ".join(map(str, args.results)))
    folds = list(dict.fromkeys(fold for per_fold in rows.values() for fold in per_fold))
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(2.2 + 2.2 * len(folds), 3.6))
    for i, (recipe, per_fold) in enumerate(rows.items()):
        x = np.arange(len(folds)) + (i - (len(rows) - 1) / 2) * width
        top1 = [per_fold[f]["top1"] if f in per_fold else np.nan for f in folds]
        bars = ax.bar(x, top1, width * 0.9, label=recipe)
        for bar, fold in zip(bars, folds):
            if fold in per_fold:
                result = per_fold[fold]
                ax.annotate(
                    f"{result['top1']:.3f}\n{len(result['missed'])} of {result['n']} missed",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(np.arange(len(folds)), folds)
    ax.set_ylim(0.8, 1.04)
    ax.set_ylabel("clip top-1")
    ax.set_title("; ".join(dict.fromkeys(titles)), fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
