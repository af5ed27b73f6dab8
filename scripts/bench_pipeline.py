"""Pose-only vs full-pipeline speed on one video, per-stage times, per-frame latency, live latency.

    python scripts/bench_pipeline.py ../shared/data/videos/exercise_3people.avi [--pose-backend auto] [--classifier-backend auto] [--imgsz 640] [--stride 1] [--tracker bytetrack]

(a) the pose stage alone (decode + YOLO-pose), (b) the whole `actionlstm run` pipeline headless with
video saving, on the same frames, model and image size, and (c) the same pipeline fed live (the file
played at its real rate through the newest-frame capture thread). Prints the figures and writes them
as JSON (`--out`); `live.p95_over_pose_stage` divides the live p95 latency by the pose and track
stages' time per frame. `--streams 1,2,4` adds (d): the video as 1, 2 and 4 sources side by side
(`actionlstm run SRC1 SRC2 ...`), total frames per second over all of them.
"""

import argparse
import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import cv2

from actionlstm.dataset import load_dataset
from actionlstm.device import resolve_device
from actionlstm.export import BACKENDS as CLASSIFIER_BACKENDS, load_classifier
from actionlstm.synthetic import write_sample_pickle
from actionlstm.train import TrainConfig, train
from pipeline.actions import ActionRuntime
from pipeline.overlay import Overlay
from pipeline.pose import BACKENDS, PoseEstimator
from pipeline.runner import ActionPipeline
from pipeline.session import Reservoir, run_session
from pipeline.sources import open_source
from pipeline.tracking import TRACKERS, Tracker


def pose_only_fps(video: str, device, imgsz: int, backend: str, max_frames: int) -> tuple[float, str]:
    """Decode + the pose stage per frame, nothing else: the speed the pipeline is measured against."""
    pose = PoseEstimator(None, device, imgsz=imgsz, backend=backend)  # loads and warms up the network
    capture = cv2.VideoCapture(video)
    ok, image = capture.read()
    frames, start = 0, time.perf_counter()
    while ok and frames < max_frames:
        pose(image)
        frames += 1
        ok, image = capture.read()
    capture.release()
    return frames / (time.perf_counter() - start), pose.backend


def percentiles(values: Reservoir) -> dict:
    return {"p50_ms": round(values.percentile(50) * 1000, 2), "p95_ms": round(values.percentile(95) * 1000, 2)}


def checkpoint_for_bench(folder: Path, device) -> Path:
    """A 101-class model (UCF101-sized head) trained one epoch on sample data: speed, not accuracy."""
    data = folder / "bench.pkl"
    write_sample_pickle(data, num_classes=101, clips_per_class=4, frames=(60, 180), seed=0)
    dataset = load_dataset(data, use_cache=False)
    out = folder / "bench.pth"
    train(dataset, dataset.split_indices("train1"), [f"class_{i}" for i in range(101)], out, device, TrainConfig(epochs=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--checkpoint", help="default: a quickly trained 101-class model")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--pose-backend", default="auto", choices=BACKENDS)
    parser.add_argument("--classifier-backend", default="auto", choices=CLASSIFIER_BACKENDS)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--tracker", default="bytetrack", choices=TRACKERS)
    parser.add_argument("--max-frames", type=int, default=10**9)
    parser.add_argument("--out", default="bench_pipeline.json")
    parser.add_argument("--streams", default="", help="comma-separated source counts, e.g. 1,2,4")
    args = parser.parse_args()
    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(args.checkpoint) if args.checkpoint else checkpoint_for_bench(Path(tmp), device)
        clf = load_classifier(checkpoint, device, args.classifier_backend)

        pose_fps, backend = pose_only_fps(args.video, device, args.imgsz, args.pose_backend, args.max_frames)

        def pipeline_run(realtime: bool):
            pipeline = build_pipeline(args, clf, device)
            with open_source(args.video, realtime=realtime) as source:
                source_limit = _Limit(source, args.max_frames)
                return run_session(pipeline, source_limit, save=Path(tmp) / "out.mp4", show=False, progress=False), source

        full, _ = pipeline_run(realtime=False)
        live, _ = pipeline_run(realtime=True)
        counts = [int(n) for n in args.streams.split(",") if n.strip()]
        streams = {n: streams_fps(args, clf, device, n) for n in counts}

    stages = {k: round(v / full.frames * 1000, 2) for k, v in full.stage_seconds.items()}
    pose_stage = (full.stage_seconds["pose"] + full.stage_seconds["track"]) / full.frames
    figures = {
        "video": args.video, "device": str(device), "pose_backend": backend, "classifier_backend": args.classifier_backend,
        "imgsz": args.imgsz, "tracker": args.tracker,
        "frames": full.frames, "stride": args.stride,
        "pose_only_fps": round(pose_fps, 2),
        "pipeline_fps": round(full.fps, 2),
        "ratio_pipeline_to_pose": round(full.fps / pose_fps, 3),
        "stage_ms_per_frame": stages,
        "frame_latency": percentiles(full.frame_seconds),
        "live": {
            "frames_processed": live.frames, "frames_dropped": live.dropped,
            "capture_to_output": percentiles(live.live_latency),
            "p95_over_pose_stage": round(live.live_latency.percentile(95) / pose_stage, 2),
        },
    }
    if streams:
        figures["streams_total_fps"] = streams
    print(json.dumps(figures, indent=2))
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


def build_pipeline(args, clf, device) -> ActionPipeline:
    """The pipeline `actionlstm run` builds, with a freshly loaded pose network."""
    pose = PoseEstimator(None, device, imgsz=args.imgsz, backend=args.pose_backend)
    return ActionPipeline(pose, Tracker(args.tracker), ActionRuntime(clf, device, stride=args.stride), Overlay())


def streams_fps(args, clf, device, count: int) -> float:
    """Total frames per second of `count` copies of the video run side by side, headless, no outputs."""
    pipeline = build_pipeline(args, clf, device)
    with ExitStack() as stack:
        sources = [_Limit(stack.enter_context(open_source(args.video)), args.max_frames) for _ in range(count)]
        start, frames = time.perf_counter(), 0
        for step in pipeline.stream_many(sources):
            frames += len(step)
        fps = frames / (time.perf_counter() - start)
    print(f"{count} source{'s' if count > 1 else ''} side by side: {fps:.1f} frames/s in total")
    return round(fps, 2)


class _Limit:
    """At most `n` frames of a source (for quick runs), otherwise the source itself."""

    def __init__(self, source, n: int):
        self.source, self.n = source, n

    def __getattr__(self, name):
        return getattr(self.source, name)

    def __iter__(self):
        for i, frame in enumerate(self.source):
            if i >= self.n:
                return
            yield frame


if __name__ == "__main__":
    main()
