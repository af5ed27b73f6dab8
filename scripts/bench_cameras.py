"""Cameras per box: N real videos played as live cameras, before and after each lever.

    python scripts/bench_cameras.py [--cameras 1,2,4,8] [--seconds 20] [--levers before,int8,motion,polled,imgsz,all]
        [--substream 640] [--data ../shared/data] [--out runs/bench_cameras.json]

Each camera is a real video played at its own frame rate through the live path (newest frame wins,
replayed when it ends), as `actionlstm serve --loop` plays a file, at most `--substream` pixels wide:
what a camera's second (detect) stream delivers, the one Frigate and its users point detectors at.
Busy cameras show people moving (the basketball video, two GMDCSA24 rooms, an arm-movement clip); with
N = 8 two are busy and six show an empty scene: a shared video's background with its people taken
out (per pixel, the median over the frames no detected person covers), with sensor noise,
MJPG-compressed. One of those six is a walk-in: 4 s of empty scene, then the video with its people,
so the benchmark also prints how long after a person appears the idle camera reports them.

Per camera it prints the processed frame rate (results a second), frames the camera dropped
(replaced by a newer one before the pipeline took them), frames the motion gate held back,
capture-to-label latency p95 (capture time to the result with its labels), and the camera's share
of the process's CPU (the process's CPU time split by each camera's share of the frames the pose
network saw, which is nearly all of it). Levers, each on its own against `before` and then `all`:

    before  FP32 OpenVINO pose at 640 px, every frame posed, sources read in turn (each step waits for each camera)
    int8    INT8 pose (`--pose-backend openvino-int8`)
    motion  pose where something moves (`--idle-fps 2`)
    polled  sources polled: a step takes the cameras that have a frame, never waits for one
    imgsz   pose at 320 px (`--imgsz 320`: the size of a camera's detect sub-stream)
    all     all four
"""

import argparse
import json
import os
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import torch

from actionlstm.builtin import builtin_path
from pipeline.outputs import VideoOutput
from pipeline.pose import PoseEstimator
from pipeline.recognizer import ActionRecognizer
from pipeline.sources import LiveSource, VideoFileSource

LEVERS = {
    "before": {"pose_backend": "openvino", "imgsz": 640, "idle_fps": 0.0, "polled": False},
    "int8": {"pose_backend": "openvino-int8", "imgsz": 640, "idle_fps": 0.0, "polled": False},
    "motion": {"pose_backend": "openvino", "imgsz": 640, "idle_fps": 2.0, "polled": False},
    "polled": {"pose_backend": "openvino", "imgsz": 640, "idle_fps": 0.0, "polled": True},
    "imgsz": {"pose_backend": "openvino", "imgsz": 320, "idle_fps": 0.0, "polled": False},
    "all": {"pose_backend": "openvino-int8", "imgsz": 320, "idle_fps": 2.0, "polled": True},
}
BUSY = ["videos/basketball_2people.mp4", "falls/adl/S1_ADL_10.mp4", "falls/adl/S3_ADL_07.mp4", "actions/A1/PS7A1P1T1.avi"]
EMPTY_FROM = ["videos/basketball_2people.mp4", "falls/adl/S3_ADL_19.mp4", "falls/fall/S2_Fall_12.mp4", "falls/fall/S2_Fall_13.mp4"]
WALK_IN_FROM = "falls/adl/S1_ADL_10.mp4"
WALK_IN_AFTER = 4.0  # seconds of empty scene before the people of the walk-in clip appear


def read(path: Path, width: int) -> tuple[list[np.ndarray], float]:
    """A video's frames, scaled to at most `width` pixels wide (a camera's detect sub-stream)."""
    with VideoFileSource(path) as source:
        frames, fps = [frame.image for frame in source], source.fps
    height, wide = frames[0].shape[:2]
    if wide > width:
        size = (width, round(height * width / wide / 2) * 2)
        frames = [cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames]
    return frames, fps


def write(path: Path, frames: list[np.ndarray], fps: float) -> str:
    """`frames` as a video `run` would write (MJPG for .avi)."""
    video = VideoOutput(path, fps)
    for frame in frames:
        video.write(frame)
    video.close()
    video.publish()
    return str(path)


def background(frames: list[np.ndarray], pose: PoseEstimator) -> np.ndarray:
    """The scene with its people gone: per pixel, the median over the frames in which no detected
    person's box (grown by a fifth) covers it; where someone always stands, the median of all."""
    sample = frames[:: max(1, len(frames) // 40)]
    stack = np.stack(sample).astype(np.float32)
    for k, frame in enumerate(sample):
        found = pose(frame)
        for x1, y1, x2, y2 in found.boxes[found.confidences >= 0.1]:
            grow_x, grow_y = (x2 - x1) / 10, (y2 - y1) / 10
            top, bottom = max(int(y1 - grow_y), 0), int(y2 + grow_y) + 1
            left, right = max(int(x1 - grow_x), 0), int(x2 + grow_x) + 1
            stack[k, top:bottom, left:right] = np.nan
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels covered in every frame: filled below
        scene = np.nanmedian(stack, axis=0)
    return np.where(np.isnan(scene), np.median(np.stack(sample), axis=0), scene)


def empty_scene(scene: np.ndarray, seconds: float, fps: float, seed: int) -> list[np.ndarray]:
    """`seconds` of a still scene, each frame with its own sensor noise."""
    rng = np.random.default_rng(seed)
    return [np.clip(scene + rng.normal(0, 2.0, scene.shape), 0, 255).astype(np.uint8) for _ in range(round(seconds * fps))]


def make_clips(data: Path, folder: Path, width: int) -> dict:
    """The busy videos at sub-stream size, six empty scenes and the walk-in clip (entrance frame
    noted); says how many people the pose network still finds in each empty scene (should be none)."""
    pose = PoseEstimator(None, torch.device("cpu"), backend="openvino")
    busy = [write(folder / f"{Path(video).stem}.avi", *read(data / video, width)) for video in BUSY]
    empty, leftovers = [], []
    for k in range(6):
        frames, fps = read(data / EMPTY_FROM[k % len(EMPTY_FROM)], width)
        scene = background(frames, pose)
        leftovers.append(int((pose(scene.astype(np.uint8)).confidences >= 0.25).sum()))
        empty.append(write(folder / f"empty_{k}.avi", empty_scene(scene, 6.0, fps, seed=k), fps))
    frames, fps = read(data / WALK_IN_FROM, width)
    before = empty_scene(background(frames, pose), WALK_IN_AFTER, fps, seed=9)
    print(f"people the pose network finds in the empty scenes (confidence >= 0.25): {leftovers}")
    return {
        "busy": busy,
        "empty": empty,
        "walk_in": write(folder / "walk_in.avi", before + frames, fps),
        "walk_in_frame": len(before),
        "walk_in_frames": len(before) + len(frames),
    }


class InTurn(LiveSource):
    """A live source read in turn (`before`): the run waits for its next frame, as before sources were polled."""

    def polled(self):
        return iter(self)


def cameras(clips: dict, n: int) -> list[str]:
    if n <= 4:
        return [clips["busy"][k % len(clips["busy"])] for k in range(n)]
    return clips["busy"][:2] + [clips["walk_in"]] + clips["empty"][: n - 3]


def run(recognizer: ActionRecognizer, specs: list[str], polled: bool, seconds: float, clips: dict) -> dict:
    """Play `specs` live for `seconds` (after 3 s of warm-up) and measure each camera."""
    kind = LiveSource if polled else InTurn
    entrance, lap_frames = clips["walk_in_frame"], clips["walk_in_frames"]
    with ExitStack() as stack:
        sources = [stack.enter_context(kind(spec, realtime_file=True, loop=True)) for spec in specs]
        counts, latencies, noticed, laps_noticed = [0] * len(specs), [[] for _ in specs], [], set()
        warm_until, start = time.monotonic() + 3.0, None
        for step in recognizer.pipeline.stream_many(sources):
            now = time.monotonic()
            if start is None and now >= warm_until:
                start, start_cpu = now, os.times()
                rested0 = [recognizer.pipeline.gates[k].rested for k in range(len(specs))]
                dropped0 = [source.dropped for source in sources]
            for result in step:
                k, source = result.source, sources[result.source]
                lap, position = divmod(result.frame, lap_frames)
                if specs[k] == clips["walk_in"] and result.persons and position >= entrance and lap not in laps_noticed:
                    laps_noticed.add(lap)  # the people appeared at frame `entrance` of this lap, paced at the clip's rate
                    noticed.append(round(now - source.started - (lap * lap_frames + entrance) / source.fps, 3))
                if start is not None:
                    counts[k] += 1
                    latencies[k].append(now - source.started - result.time)
            if start is not None and now - start >= seconds:
                break
        cpu, wall = os.times(), time.monotonic() - start
        used = (cpu.user - start_cpu.user) + (cpu.system - start_cpu.system)
        per_camera = [
            {
                "video": Path(specs[k]).name,
                "fps": round(counts[k] / wall, 1),
                "dropped": sources[k].dropped - dropped0[k],
                "rested": recognizer.pipeline.gates[k].rested - rested0[k],
                "p95_ms": round(float(np.percentile(latencies[k], 95)) * 1000, 1) if latencies[k] else None,
                "cpu_share": round(used / wall * counts[k] / max(sum(counts), 1) / os.cpu_count(), 3),
            }
            for k in range(len(specs))
        ]
    return {"cameras": per_camera, "cpu_of_box": round(used / wall / os.cpu_count(), 3), "walk_in_noticed_s": noticed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--levers", default=",".join(LEVERS))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--substream", type=int, default=640, help="cameras' frames at most this wide (their detect sub-stream)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_cameras.json"))
    args = parser.parse_args()
    counts = [int(n) for n in args.cameras.split(",")]
    report = {"cpu_count": os.cpu_count(), "seconds": args.seconds, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(args.data, Path(tmp), args.substream)
        for lever in args.levers.split(","):
            settings = dict(LEVERS[lever])
            polled = settings.pop("polled")
            recognizer = ActionRecognizer(str(builtin_path("falls")), device="cpu", **settings)
            for n in counts:
                specs = cameras(clips, n)
                figures = run(recognizer, specs, polled, args.seconds, clips)
                report["runs"].append({"lever": lever, "n": n, **figures})
                busy = [c["fps"] for c in figures["cameras"] if not c["video"].startswith(("empty", "walk_in"))]
                line = f"{lever:>7} N={n}: busy cameras {min(busy):.1f}-{max(busy):.1f} fps, box CPU {figures['cpu_of_box']:.0%}"
                if figures["walk_in_noticed_s"]:
                    line += f", walk-in noticed after {max(figures['walk_in_noticed_s']):.2f} s"
                print(line, flush=True)
                for camera in figures["cameras"]:
                    print(
                        f"         {camera['video']:<24} {camera['fps']:5.1f} fps  dropped {camera['dropped']:4d}"
                        f"  rested {camera['rested']:4d}  p95 {camera['p95_ms']} ms  CPU {camera['cpu_share']:.1%}",
                        flush=True,
                    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
