"""The picture in docs/mocap.md: one HDM05 take rendered by `actionlstm.mocap` through three cameras.

    python scripts/mocap_figure.py ../shared/data/mocap/hdm05 --take HDM_bd_lieDownFloor_001 --out docs/mocap_views.png

Rows: a front view (yaw 0, 1.2 m high, 3.5 m away), a side view (yaw 90: the actor's left) and a high
camera (yaw 30, 2.5 m, 3 m away, looking down); columns: moments of the take. Each panel is the whole
640 x 480 frame. Light grey: the perfect projection; over it the render with the default noise model,
the actor's left limbs blue and right red; joints with a score at or below 0.05 (dropped, or a face
turned away) are hollow, and a frame where the person is missed shows only the grey.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from actionlstm.mocap import Camera, list_takes, load_motion, render_take
from actionlstm.skeleton import LEFT, LIMBS

CAMERAS = {
    "front (yaw 0, 1.2 m)": Camera(0, 1.2, 3.5),
    "side (yaw 90, 1.2 m)": Camera(90, 1.2, 3.5),
    "high (yaw 30, 2.5 m)": Camera(30, 2.5, 3.0),
}


def draw(ax, keypoint: np.ndarray, score: np.ndarray, perfect: np.ndarray, camera: Camera) -> None:
    """The perfect projection in light grey, the noisy render over it (hollow: dropped joints)."""
    for a, b in LIMBS:
        ax.plot(perfect[[a, b], 0], perfect[[a, b], 1], color="0.85", lw=3, zorder=1)
    present, seen = score > 0, score > 0.05
    for a, b in LIMBS:
        if present[a] and present[b]:
            color = "tab:blue" if {a, b} <= LEFT else "tab:red" if not {a, b} & LEFT else "0.4"
            ax.plot(keypoint[[a, b], 0], keypoint[[a, b], 1], color=color, lw=1.5, zorder=2)
    ax.scatter(*keypoint[seen].T, s=8, color="k", zorder=3)
    ax.scatter(*keypoint[present & ~seen].T, s=14, facecolors="none", edgecolors="k", zorder=3)
    ax.set_xlim(0, camera.width)
    ax.set_ylim(camera.image_height, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the hdm05 folder")
    parser.add_argument("--take", default="HDM_bd_lieDownFloor_001")
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0, help="of the noise")
    parser.add_argument("--out", type=Path, default=Path("docs/mocap_views.png"))
    args = parser.parse_args()
    take = next(t for t in list_takes(args.data) if t.key == args.take)
    motion = load_motion(take)
    fig, axes = plt.subplots(len(CAMERAS), args.columns, figsize=(2.6 * args.columns, 2.1 * len(CAMERAS) + 0.5))
    for row, (title, camera) in enumerate(CAMERAS.items()):
        ann = render_take(take, camera, 0, rng=np.random.default_rng([args.seed, row]), motion=motion)
        perfect = render_take(take, camera, 0, noise=None, motion=motion)["keypoint"][0].astype(float)
        for col, t in enumerate(np.linspace(0, ann["total_frames"] - 1, args.columns).round().astype(int)):
            ax = axes[row, col]
            draw(ax, ann["keypoint"][0, t].astype(float), ann["keypoint_score"][0, t].astype(float), perfect[t], camera)
            if row == 0:
                ax.set_title(f"{t / camera.fps:.1f} s", fontsize=9)
            if col == 0:
                ax.set_ylabel(title, fontsize=8)
    fig.suptitle(f"{take.key} (HDM05, CC BY-SA 3.0): left limbs blue, right red, the perfect projection grey", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
