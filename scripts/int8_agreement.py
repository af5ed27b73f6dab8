"""Where INT8 pose puts keypoints against FP32, and how fast each runs: the check behind `--pose-backend auto`
choosing OpenVINO INT8 for the live stages.

    python scripts/int8_agreement.py ../shared/data/videos/*.mp4 ../shared/data/videos/*.avi [--imgsz 640] [--every 2]

For every `--every`-th frame of each video, both networks' people are matched by box overlap (IoU
above 0.5); for each matched person, the distance between the two positions of each keypoint both
networks see (score above 0.5), divided by the person's height (FP32 box). Prints the median and
95th percentile over all such keypoints, the share of people found by one network only, and each
network's frames per second on the same frames (batches of 4, as four cameras would hand them over).
"""

import argparse
import json
import time

import numpy as np
import torch

from pipeline.pose import PoseEstimator
from pipeline.sources import VideoFileSource


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] overlap of boxes a [N, 4] and b [M, 4] (x1, y1, x2, y2)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area = lambda boxes: np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def compare(fp32, int8) -> tuple[list[float], int, int]:
    """Keypoint distances (fractions of height) of matched people, unmatched people, all people."""
    distances, unmatched = [], 0
    if len(fp32) and len(int8):
        overlap = iou(fp32.boxes, int8.boxes)
        for i in range(len(fp32)):
            j = int(overlap[i].argmax())
            if overlap[i, j] < 0.5:
                unmatched += 1
                continue
            height = fp32.boxes[i, 3] - fp32.boxes[i, 1]
            seen = (fp32.scores[i] > 0.5) & (int8.scores[j] > 0.5)
            distances += (np.linalg.norm(fp32.keypoints[i] - int8.keypoints[j], axis=1)[seen] / height).tolist()
        unmatched += max(len(int8) - len(fp32), 0)
    else:
        unmatched = len(fp32) + len(int8)
    return distances, unmatched, max(len(fp32), len(int8))


def frames_per_second(pose: PoseEstimator, frames: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for k in range(0, len(frames), 4):
        pose.batch(frames[k : k + 4])
    return len(frames) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--every", type=int, default=2)
    args = parser.parse_args()
    cpu = torch.device("cpu")
    fp32 = PoseEstimator(None, cpu, imgsz=args.imgsz, backend="openvino")
    int8 = PoseEstimator(None, cpu, imgsz=args.imgsz, backend="openvino-int8")
    distances, unmatched, people, frames = [], 0, 0, []
    for video in args.videos:
        with VideoFileSource(video) as source:
            images = [frame.image for frame in source if frame.index % args.every == 0]
        frames += images
        for image in images:
            d, u, n = compare(fp32(image), int8(image))
            distances += d
            unmatched, people = unmatched + u, people + n
    speed = {name: round(frames_per_second(pose, frames), 1) for name, pose in (("fp32", fp32), ("int8", int8))}
    speed = {name: round(frames_per_second(pose, frames), 1) for name, pose in (("fp32", fp32), ("int8", int8))}  # warm now
    report = {
        "frames": len(frames),
        "keypoints": len(distances),
        "median_of_height": round(float(np.median(distances)), 4),
        "p95_of_height": round(float(np.percentile(distances, 95)), 4),
        "people_found_by_one_only": f"{unmatched} of {people}",
        "fps_batches_of_4": speed,
        "speedup": round(speed["int8"] / speed["fp32"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
