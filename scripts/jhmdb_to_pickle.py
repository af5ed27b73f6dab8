"""JHMDB ground-truth joints (DD-Net's `data/JHMDB/GT_{train,test}_{1,2,3}.pkl`) as one UCF101-format pickle.

    python scripts/jhmdb_to_pickle.py DD-Net/data/JHMDB /work/ext17/jhmdb.pkl

DD-Net (MIT licence, github.com/fandulu/DD-Net) ships JHMDB's annotated 2D joints of its 14-class
subset as dicts of `pose` (a [T, 15, 2] array per clip, JHMDB's `pos_world`: centred and scaled, y
down) and `label` (a class name). The same clip appears in several splits and the files name no clip,
so clips are matched across splits by their joints and each is written once, named
`<class>_<nnnn>`; `split` gets train1..3 / test1..3. The 13 JHMDB joints with a COCO equivalent go to
their COCO-17 place (the face point as the nose) with score 1; eyes and ears are absent (score 0).
Coordinates are placed in a 320x240 frame at 60 px per unit: `preprocess` normalises position and
scale away, so only the shape of the movement matters. Clips are 30 fps (`fps` is recorded). The
pickles are read with the project's restricted unpickler, which builds arrays and containers only.
Data for measurement: keep the output outside the repository.
"""

import argparse
import hashlib
from pathlib import Path

import numpy as np

from actionlstm.pickle_io import dump_pickle_like_mmcv, load_pickle
from actionlstm.skeleton import NUM_JOINTS

# COCO-17 index <- JHMDB index (JHMDB: 0 neck, 1 belly, 2 face, 3/4 right/left shoulder, 5/6 hip,
# 7/8 elbow, 9/10 knee, 11/12 wrist, 13/14 ankle).
COCO_FROM_JHMDB = {0: 2, 5: 4, 6: 3, 7: 8, 8: 7, 9: 12, 10: 11, 11: 6, 12: 5, 13: 10, 14: 9, 15: 14, 16: 13}
HEIGHT, WIDTH, PIXELS_PER_UNIT, FPS = 240, 320, 60.0, 30.0


def to_coco(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A JHMDB [T, 15, 2] pose as COCO-17 pixel keypoints [1, T, 17, 2] and scores [1, T, 17]."""
    pose = np.asarray(pose, np.float64)
    if pose.ndim != 3 or pose.shape[1:] != (15, 2):
        raise SystemExit(f"a JHMDB pose has shape {pose.shape}, expected T x 15 x 2")
    keypoint = np.zeros((1, len(pose), NUM_JOINTS, 2), np.float32)
    score = np.zeros((1, len(pose), NUM_JOINTS), np.float32)
    for coco, jhmdb in COCO_FROM_JHMDB.items():
        keypoint[0, :, coco] = pose[:, jhmdb] * PIXELS_PER_UNIT + (WIDTH / 2, HEIGHT / 2)
        score[0, :, coco] = 1.0
    return keypoint, score


def convert(folder: Path) -> tuple[dict, list[str]]:
    """The UCF101-format dict of every clip in the six split files, and the class names."""
    parts = {f"{kind}{n}": load_pickle(folder / f"GT_{kind}_{n}.pkl") for n in (1, 2, 3) for kind in ("train", "test")}
    classes = sorted({str(label) for part in parts.values() for label in part["label"]})
    annotations: list[dict] = []
    by_joints: dict[str, str] = {}
    split: dict[str, list[str]] = {name: [] for name in parts}
    for name, part in parts.items():
        for pose, label in zip(part["pose"], part["label"]):
            key = hashlib.sha256(np.ascontiguousarray(pose, np.float64).tobytes() + str(label).encode()).hexdigest()
            if key not in by_joints:
                by_joints[key] = f"{label}_{len(annotations):04d}"
                keypoint, score = to_coco(pose)
                annotations.append(
                    {
                        "frame_dir": by_joints[key],
                        "label": classes.index(str(label)),
                        "img_shape": (HEIGHT, WIDTH),
                        "original_shape": (HEIGHT, WIDTH),
                        "total_frames": len(pose),
                        "keypoint": keypoint.astype(np.float16),
                        "keypoint_score": score.astype(np.float16),
                        "fps": FPS,
                    }
                )
            split[name].append(by_joints[key])
    return {"split": split, "annotations": annotations}, classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="DD-Net's data/JHMDB folder (GT_train_1.pkl ...)")
    parser.add_argument("out", type=Path, help="the pickle to write; class names go to OUT.classes.txt")
    args = parser.parse_args()
    data, classes = convert(args.folder)
    dump_pickle_like_mmcv(data, args.out)
    args.out.with_suffix(".classes.txt").write_text("\n".join(classes) + "\n")
    sizes = ", ".join(f"{name} {len(members)}" for name, members in data["split"].items())
    print(f"{len(data['annotations'])} clips, {len(classes)} classes -> {args.out} ({sizes})")


if __name__ == "__main__":
    main()
