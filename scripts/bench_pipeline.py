"""Pose-only vs full-pipeline speed on one video, per-stage times, per-frame latency, live latency.

    python scripts/bench_pipeline.py ../shared/data/videos/exercise_3people.avi [--pose-backend auto]
        [--classifier-backend auto] [--imgsz 640] [--stride 1] [--tracker bytetrack] [--repeats 3]

(a) the pose stage alone (decode + YOLO-pose), (b) the whole `actionlstm run` pipeline headless with
video saving, on the same frames, model and image size, and (c) the same pipeline fed live (the file
played at its real rate through the newest-frame capture thread), `--repeats` times in turn. Prints
each repeat's figures and the medians, and writes them as JSON (`--out`); `live.p95_over_pose_stage`
divides the live p95 latency by the pose and track stages' time per frame in (b), and
`live.p95_over_live_pose_stage` by theirs in (c) itself: a network that idles between a camera's
frames starts each one slower than back to back. `--streams 1,2,4`
adds (d): the video as 1, 2 and 4 sources side by side (`actionlstm run SRC1 SRC2 ...`), total frames
per second over all of them.
"""

import argparse
import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np

from actionlstm.dataset import load_dataset
from actionlstm.device import resolve_device
from actionlstm.export import BACKENDS as CLASSIFIER_BACKENDS
from actionlstm.export import load_classifier
from actionlstm.synthetic import write_sample_pickle
from actionlstm.train import TrainConfig, train
from pipeline.actions import ActionRuntime
from pipeline.overlay import Overlay
from pipeline.pose import BACKENDS, PoseEstimator
from pipeline.predictor import ActionPipeline
from pipeline.run import run_session
from pipeline.sources import open_source
from pipeline.summary import Reservoir, RunSummary
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


def pose_stage(run: RunSummary) -> float:
    """Seconds per frame of a run's pose and track stages."""
    return (run.stage_seconds["pose"] + run.stage_seconds["track"]) / run.frames


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
    parser.add_argument("--repeats", type=int, default=3, help="pose-only, file and live runs, one after the other; medians reported")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be 1 or more")
    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(args.checkpoint) if args.checkpoint else checkpoint_for_bench(Path(tmp), device)
        clf = load_classifier(checkpoint, device, args.classifier_backend)

        def pipeline_run(realtime: bool) -> RunSummary:
            pipeline = build_pipeline(args, clf, device)
            with open_source(args.video, realtime=realtime) as source:
                return run_session(pipeline, _Limit(source, args.max_frames), save=Path(tmp) / "out.mp4", show=False, progress=False)

        # This machine's speed drifts over minutes, so each ratio comes from runs made one right after the other.
        runs = []
        for _ in range(args.repeats):
            pose_fps, backend = pose_only_fps(args.video, device, args.imgsz, args.pose_backend, args.max_frames)
            full, live = pipeline_run(realtime=False), pipeline_run(realtime=True)
            runs.append(run_figures(pose_fps, full, live))
            print(json.dumps(runs[-1]))
        counts = [int(n) for n in args.streams.split(",") if n.strip()]
        streams = {n: streams_fps(args, clf, device, n) for n in counts}

    def median(key: str, part: str | None = None) -> float:
        return round(float(np.median([(run[part] if part else run)[key] for run in runs])), 3)

    figures = {
        "video": args.video,
        "device": str(device),
        "pose_backend": backend,
        "classifier_backend": args.classifier_backend,
        "imgsz": args.imgsz,
        "tracker": args.tracker,
        "frames": runs[0]["frames"],
        "stride": args.stride,
        "repeats": args.repeats,
        "pose_only_fps": median("pose_only_fps"),
        "pipeline_fps": median("pipeline_fps"),
        "ratio_pipeline_to_pose": median("ratio_pipeline_to_pose"),
        "live": {key: median(key, "live") for key in ("p95_ms", "p95_over_pose_stage", "p95_over_live_pose_stage")},
        "runs": runs,
    }
    if streams:
        figures["streams_total_fps"] = streams
    print(json.dumps({k: v for k, v in figures.items() if k != "runs"}, indent=2))
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


def run_figures(pose_fps: float, full: RunSummary, live: RunSummary) -> dict:
    """One repeat: pose only, the whole pipeline on the file, and the file played live."""
    return {
        "frames": full.frames,
        "pose_only_fps": round(pose_fps, 2),
        "pipeline_fps": round(full.fps, 2),
        "ratio_pipeline_to_pose": round(full.fps / pose_fps, 3),
        "stage_ms_per_frame": {k: round(v / full.frames * 1000, 2) for k, v in full.stage_seconds.items()},
        "frame_latency": percentiles(full.frame_seconds),
        "live": {
            "frames_processed": live.frames,
            "frames_dropped": live.dropped,
            "p50_ms": round(live.live_latency.percentile(50) * 1000, 2),
            "p95_ms": round(live.live_latency.percentile(95) * 1000, 2),
            "p95_over_pose_stage": round(live.live_latency.percentile(95) / pose_stage(full), 2),
            "p95_over_live_pose_stage": round(live.live_latency.percentile(95) / pose_stage(live), 2),
            "live_stage_ms_per_frame": {k: round(v / live.frames * 1000, 2) for k, v in live.stage_seconds.items()},
        },
    }


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
