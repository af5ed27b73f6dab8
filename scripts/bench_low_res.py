"""Does the pose stage still find people in small videos? Downscale real clips and compare.

    python scripts/bench_low_res.py ../shared/data/actions/*/*.avi --sizes 640x480 320x240 160x120

For each size and pose image size, prints the share of frames in which a person is found and the
keypoint error against the full-resolution skeleton (mean distance of joints both runs see with
score > 0.3, as a share of the skeleton's height). ultralytics letterboxes every frame to `--imgsz`,
scaling small frames UP, so a 160x120 video is seen at 640x480; `--imgsz 160` shows what happens
without that upscaling.
"""

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline.pose import PoseEstimator


def read_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    capture.release()
    return frames


def main_person(pose: PoseEstimator, frames: list[np.ndarray], scale: float) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per frame the strongest detection, keypoints in full-resolution pixels, or None."""
    found = []
    for image in frames:
        people = pose(image)
        if len(people) == 0:
            found.append(None)
            continue
        best = int(np.argmax(people.scores.sum(1)))
        found.append((people.keypoints[best] / scale, people.scores[best]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--sizes", nargs="+", default=["640x480", "320x240", "160x120"])
    parser.add_argument("--imgsz", nargs="+", type=int, default=[640, 160])
    parser.add_argument("--out", type=Path, default=Path("bench_low_res.json"))
    args = parser.parse_args()

    clips = {path: read_frames(path) for path in args.videos}
    estimators = {imgsz: PoseEstimator(None, torch.device("cpu"), imgsz=imgsz) for imgsz in args.imgsz}
    reference = {path: main_person(estimators[max(args.imgsz)], frames, 1.0) for path, frames in clips.items()}
    rows = []
    for size in args.sizes:
        width, height = map(int, size.split("x"))
        for imgsz, pose in estimators.items():
            found = total = 0
            errors = []
            for path, frames in clips.items():
                scale = width / frames[0].shape[1]
                small = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
                for ref, got in zip(reference[path], main_person(pose, small, scale)):
                    total += 1
                    found += got is not None
                    if ref is None or got is None:
                        continue
                    both = (ref[1] > 0.3) & (got[1] > 0.3)
                    height_px = np.ptp(ref[0][ref[1] > 0.3, 1]) if (ref[1] > 0.3).sum() >= 2 else 0
                    if both.any() and height_px > 0:
                        errors.append(float(np.linalg.norm(ref[0][both] - got[0][both], axis=1).mean() / height_px))
            row = {
                "size": size,
                "imgsz": imgsz,
                "frames": total,
                "person_found": found / total,
                "keypoint_error": float(np.mean(errors)) if errors else None,
            }
            rows.append(row)
            error = f"{row['keypoint_error']:.3f}" if errors else "-"
            found = f"person in {row['person_found']:.1%} of {total} frames"
            print(f"{size:>9} at imgsz {imgsz:>4}: {found}, keypoint error {error} of body height", flush=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
