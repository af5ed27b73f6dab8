"""The picture in docs/views.md: what training's view augmentation makes of a front view, beside
what cameras turned around the actor really show.

    python scripts/view_figure.py ../shared/data/mocap/hdm05 --take HDM_bd_kickLFront1Reps_001 --out docs/views_augment.png

One HDM05 take, perfect projections (no pose noise) through a level camera 3.5 m away, in the
normalised coordinates the model reads (`actionlstm.preprocess.normalize`: centred on the window's
joints, in units of the body's larger side). Columns: the front view; the front view foreshortened as
training's `actionlstm.augment.turned` does for a camera turned 60 and 90 degrees (x times cos of the turn);
the real views from 60 and 90 degrees. Rows: moments of the take. Left limbs blue, right red.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from actionlstm.augment import turned as turned_camera
from actionlstm.mocap import Camera, list_takes, load_motion, render_take
from actionlstm.preprocess import normalize
from actionlstm.skeleton import LEFT, LIMBS


def normalised(take, yaw: float, motion) -> np.ndarray:
    """The take through a level camera at `yaw`, as the model's normalised coordinates [T, 17, 2]."""
    ann = render_take(take, Camera(yaw, 1.0, 3.5, tilt=0.0), 0, noise=None, motion=motion)
    keypoint, score = ann["keypoint"][0].astype(np.float32), ann["keypoint_score"][0].astype(np.float32)
    return normalize(keypoint[None], (score > 0)[None])[0]


def turned(coords: np.ndarray, degrees: float) -> np.ndarray:
    """`coords` [T, 17, 2] as training's augmentation foreshortens them for a camera turned by `degrees` (no tilt, no travel)."""
    one = np.ones(1)
    return turned_camera(coords[None], np.ones(coords.shape[:2], bool)[None], np.deg2rad(degrees) * one, 0 * one, 0 * one)[0]


def draw(ax, pose: np.ndarray) -> None:
    for a, b in LIMBS:
        color = "tab:blue" if {a, b} <= LEFT else "tab:red" if not {a, b} & LEFT else "0.4"
        ax.plot(pose[[a, b], 0], pose[[a, b], 1], color=color, lw=1.8)
    ax.scatter(*pose.T, s=6, color="k", zorder=3)
    ax.set_xlim(-0.75, 0.75)
    ax.set_ylim(0.75, -0.75)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the hdm05 folder")
    parser.add_argument("--take", default="HDM_bd_kickLFront1Reps_001")
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/views_augment.png"))
    args = parser.parse_args()
    take = next(t for t in list_takes(args.data) if t.key == args.take)
    motion = load_motion(take)
    front = normalised(take, 0.0, motion)
    columns = {
        "front view (yaw 0)": front,
        "front, turned 60 in training": turned(front, 60.0),
        "front, turned 90 in training": turned(front, 90.0),
        "real view from yaw 60": normalised(take, 60.0, motion),
        "real view from yaw 90 (side)": normalised(take, 90.0, motion),
    }
    fig, axes = plt.subplots(args.rows, len(columns), figsize=(2.2 * len(columns), 2.3 * args.rows + 0.5))
    for row, t in enumerate((np.linspace(0.2, 0.8, args.rows) * (len(front) - 1)).round().astype(int)):
        for col, (title, poses) in enumerate(columns.items()):
            ax = axes[row, col]
            draw(ax, poses[t])  # every camera runs at 30 fps: the same frames
            if row == 0:
                ax.set_title(title, fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{t / 30:.1f} s", fontsize=8)
    fig.suptitle(f"{take.key} (HDM05, CC BY-SA 3.0), normalised as the model reads it: left limbs blue, right red", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
