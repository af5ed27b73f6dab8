"""`actionlstm extract`'s speed against its own pose stage and a plain ultralytics PyTorch loop, on the
same frames in one run.

    python scripts/bench_extract.py FOLDER [--videos N]

FOLDER is what `extract` reads (class folders or a `path label` list). Each video is decoded once into
memory, then, in an order that rotates from video to video so a busy machine slows all three alike:
- extract: the video through `extract_one` (decode, pose, tracking, joining, cache entry), the call
  `actionlstm extract` makes per video, with the stages built once as it builds them;
- pose-only: every decoded frame through the same pose stage (`PoseEstimator`, the backend extract
  uses), one call per frame as `run` makes with one source; no decode, no tracking;
- plain PyTorch: `YOLO(weights)(frame)` per decoded frame, as a user would write it; no decode.
Decoding is left out of both baselines, so the ratios are conservative for extract. Per-video
overhead is what an extract spends outside its steady frame rate (opening the file, the first
batch, joining tracks, the cache entry): its time minus its frame count at the pace of its progress
ticks after the first batch. The start-up (model load, export cache, warm-up) is timed once, outside
all three.
"""

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def decode(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    ok, image = capture.read()
    while ok:
        frames.append(image)
        ok, image = capture.read()
    capture.release()
    return frames


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


class Ticks:
    """extract's progress callback, timestamping every finished frame."""

    def __init__(self):
        self.times: list[float] = []

    def __call__(self) -> None:
        self.times.append(time.perf_counter())


def overhead(start: float, end: float, ticks: list[float], batch: int) -> float:
    """Seconds of one extract beyond its frames at their steady pace. Ticks come a batch at a time,
    so the pace is taken from the first tick (the first batch done) to the last one: the frames
    after the first batch."""
    steady = (ticks[-1] - ticks[0]) / (len(ticks) - batch) if len(ticks) > batch else 0.0
    return (end - start) - steady * len(ticks)


def extract(stages, path: Path, target: Path, max_persons: int) -> float:
    """One video through `extract_one`, as `actionlstm extract` calls it; returns its overhead."""
    from pipeline.extract.dataset import extract_one

    ticks = Ticks()
    start = time.perf_counter()
    if problem := extract_one(stages, path, target, max_persons, ticks):
        raise SystemExit(f"error: {problem}")
    return overhead(start, time.perf_counter(), ticks.times, min(stages[0].file_batch, len(ticks.times)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--videos", type=int, default=0, help="only the first N videos (0: all)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from ultralytics import YOLO

    from actionlstm.videoset import find_videos
    from pipeline.pose import resolve_pose_model
    from pipeline.settings import PoseSettings

    videos = find_videos(args.folder).videos[: args.videos or None]
    settings = PoseSettings(device=args.device)
    start = time.perf_counter()
    stages = settings.build()
    startup = time.perf_counter() - start
    plain = YOLO(resolve_pose_model(None), task="pose")
    plain(np.zeros((480, 640, 3), np.uint8), verbose=False)  # its own load and warm-up, outside the timing

    counts, overheads, seconds = [], [], {"extract": [], "pose-only": [], "plain PyTorch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for v, video in enumerate(videos):
            frames = decode(video.path)
            target = Path(tmp) / f"{v}.npz"
            runs = {  # each run is timed within this iteration, so the loop's current video and frames are the ones meant
                "extract": lambda path=video.path, target=target: overheads.append(extract(stages, path, target, max_persons=2)),
                "pose-only": lambda frames=frames: [stages[0](frame) for frame in frames],
                "plain PyTorch": lambda frames=frames: [plain(frame, verbose=False) for frame in frames],
            }
            names = list(runs)
            for name in names[v % 3 :] + names[: v % 3]:
                seconds[name].append(timed(runs[name]))
            counts.append(len(frames))
            print(f"{video.name}: {len(frames)} frames, " + ", ".join(f"{n} {seconds[n][-1]:.2f} s" for n in names), flush=True)

    total = sum(counts)
    rate = {name: total / sum(s) for name, s in seconds.items()}
    print(f"\n{len(videos)} videos, {total} frames ({args.folder}); pose backend {stages[0].backend}, device {stages[0].device}")
    print(f"start-up (model load and warm-up, once): {startup:.2f} s")
    for name in seconds:
        print(f"{name:>14}: {rate[name]:6.1f} frames/s")
    print(f"per-video overhead of extract: median {np.median(overheads) * 1e3:.0f} ms, mean {np.mean(overheads) * 1e3:.0f} ms")
    print(f"extract / pose-only: {rate['extract'] / rate['pose-only']:.2f}x", end="; ")
    print(f"extract / plain PyTorch: {rate['extract'] / rate['plain PyTorch']:.2f}x")


if __name__ == "__main__":
    main()
