"""`actionlstm extract`: a folder of labelled videos in, a UCF101 / PYSKL skeleton pickle out.

Each finished video is kept as a small .npz under the cache folder, keyed by the video (path, size,
modification time) and everything that shapes its skeletons (pose weights, backend, image size,
device, tracker and its lost time, persons kept). A rerun after Ctrl-C, a crash or new videos only
extracts what is missing, and since each video is extracted from a freshly reset tracker, it gives
what one uninterrupted run would have.
The pickle and its class list are written atomically at the end.
"""

import hashlib
import json
import multiprocessing
import os
import queue
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from actionlstm import console
from actionlstm.atomic import atomic_path
from actionlstm.distributed import World
from actionlstm.errors import UserError
from actionlstm.paths import cache_root, file_identity
from actionlstm.pickle_io import dump_pickle_like_mmcv
from actionlstm.videoset import Video, VideoSet, assign_splits, frame_dirs
from pipeline.extract.video import extract_video
from pipeline.settings import PoseSettings

FORMAT_VERSION = 2  # bump when extraction itself changes, so cached videos are redone


def fingerprint(settings: PoseSettings, max_persons: int) -> str:
    """Identifies the skeletons these settings produce: every setting (the tracker and its lost time
    among them), the persons kept, the weights file, backend, device and the versions of the
    libraries that run the network and the tracker."""
    from importlib.metadata import PackageNotFoundError, version

    from actionlstm.device import resolve_device
    from pipeline.pose import choose_backend, resolve_pose_model

    device = resolve_device(settings.device)
    weights = resolve_pose_model(settings.pose_model)
    backend = choose_backend(settings.pose_backend, device, weights)
    libraries = {}
    for package in ("torch", "ultralytics", "openvino", "onnxruntime", "opencv-python"):
        try:
            libraries[package] = version(package)
        except PackageNotFoundError:
            libraries[package] = None
    identity = file_identity(Path(weights)) if Path(weights).is_file() else weights
    parts = {
        "model": identity,
        "backend": backend,
        "imgsz": settings.imgsz,
        "device": device.type,
        "max_persons": max_persons,
        "tracker": settings.tracker,
        "lost_seconds": settings.lost_seconds,
        "conf": settings.conf,
        "libraries": libraries,
        "version": FORMAT_VERSION,
    }  # the keys of the cache entries made before the settings were `PoseSettings`: those entries stay valid
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cached_path(video: Path, fingerprint: str) -> Path:
    key = hashlib.sha256(f"{file_identity(video)}|{fingerprint}".encode()).hexdigest()[:24]
    return cache_root() / "extract" / f"{video.stem[:40]}-{key}.npz"


def _save_annotation(annotation: dict, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in annotation.items()})


def _load_annotation(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {
                "img_shape": tuple(int(v) for v in z["img_shape"]),
                "original_shape": tuple(int(v) for v in z["original_shape"]),
                "total_frames": int(z["total_frames"]),
                "keypoint": z["keypoint"].astype(np.float16),
                "keypoint_score": z["keypoint_score"].astype(np.float16),
                "fps": float(z["fps"]),
            }
    except Exception:  # a damaged entry is extracted again
        return None


def extract_one(stages, video: Path, target: Path, max_persons: int, on_frame=None) -> str | None:
    """Extract one video into its cache entry with `stages` (pose, tracker) from `PoseSettings.build`;
    returns why it could not be, or None.

    Any failure of one video (undecodable, a library error on an odd frame, a full disk) is that
    video's problem: it is named in the summary and the others go on.
    """
    try:
        _save_annotation(extract_video(video, *stages, max_persons, on_frame), target)
    except UserError as exc:
        return str(exc)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"extraction failed ({type(exc).__name__}{': ' + detail if detail else ''})"
    return None


# Worker processes (--workers N): each builds its own pose and tracking stages once, then takes videos one by one.
_worker: dict = {}
_REPORT_SECONDS = 0.25  # a worker's frame counts reach the progress bar this often
_REDRAWS_PER_SECOND = 2  # the bars are redrawn this often: enough to read, and not a cost of its own


def _worker_start(settings: PoseSettings, max_persons: int, frames: "queue.Queue[int]", stop, threads: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: Ctrl-C is the parent's to handle
    import torch

    torch.set_num_threads(threads)
    _worker.update(stages=settings.build(), frames=frames, stop=stop, max_persons=max_persons, unsent=0, sent=time.perf_counter())


def _worker_frame() -> None:
    """A worker's progress tick. Sending a count and asking whether the parent was interrupted are
    each a round trip to the manager process, so they happen every `_REPORT_SECONDS`, not every
    frame (and the counts left at the end of a video are sent then). When the parent was
    interrupted, the worker is too: the video it is on is dropped (not cached) and it ends."""
    _worker["unsent"] += 1
    if time.perf_counter() - _worker["sent"] >= _REPORT_SECONDS:
        _worker_report()
        if _worker["stop"].is_set():
            raise KeyboardInterrupt


def _worker_report() -> None:
    if _worker["unsent"]:
        _worker["frames"].put(_worker["unsent"])
    _worker.update(unsent=0, sent=time.perf_counter())


def _worker_extract(video: str, target: str) -> str | None:
    try:
        return extract_one(_worker["stages"], Path(video), Path(target), _worker["max_persons"], _worker_frame)
    finally:
        _worker_report()


def _frame_count(video: Path) -> int:
    capture = cv2.VideoCapture(str(video))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    return max(count, 0)


class _Bars:
    """Two bars: videos done, and frames with their rate and the time left."""

    def __init__(self, videos: int, frames: int):
        columns = (
            TextColumn("[bold]{task.description:<7}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self.progress = Progress(*columns, console=console.err, refresh_per_second=_REDRAWS_PER_SECOND)
        self.videos = self.progress.add_task("videos", total=videos, rate="")
        self.frames = self.progress.add_task("frames", total=frames or None, rate="")
        self.started = time.perf_counter()
        self.done_frames = 0

    def frame(self, count: int = 1) -> None:
        self.done_frames += count
        rate = self.done_frames / max(time.perf_counter() - self.started, 1e-6)
        self.progress.update(self.frames, advance=count, rate=f"{rate:5.1f} frames/s")

    def video(self) -> None:
        self.progress.advance(self.videos)


def _run_jobs(jobs: list[tuple[Video, Path]], settings: PoseSettings, max_persons: int, workers: int, bars: _Bars) -> dict[Path, str]:
    """Extract every job into the cache; returns the videos that could not be read, with why."""
    problems: dict[Path, str] = {}
    stages = settings.build()  # with workers too: a model that cannot load fails here, in one line
    if workers <= 1:
        for video, target in jobs:
            if problem := extract_one(stages, video.path, target, max_persons, bars.frame):
                problems[video.path] = problem
            bars.video()
        return problems
    del stages
    workers = min(workers, len(jobs))
    context = multiprocessing.get_context("spawn")  # fork would copy the parent's inference threads' state
    threads = max(1, (os.cpu_count() or 1) // workers)
    with context.Manager() as manager:
        frames, stop = manager.Queue(), manager.Event()
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_worker_start, initargs=(settings, max_persons, frames, stop, threads)
        ) as pool:
            pending = {pool.submit(_worker_extract, str(v.path), str(t)): v for v, t in jobs}
            try:
                while pending:
                    done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in done:
                        video = pending.pop(future)
                        if problem := future.result():
                            problems[video.path] = problem
                        bars.video()
                    _drain(frames, bars)
            except BrokenProcessPool:
                raise UserError(
                    "an extraction worker died (out of memory?); finished videos are kept: run the same command again"
                ) from None
            except KeyboardInterrupt:
                stop.set()  # workers drop the video they are on (it is not cached) and end
                pool.shutdown(cancel_futures=True)
                raise
    return problems


def _drain(frames: "queue.Queue[int]", bars: _Bars) -> None:
    count = 0
    while True:
        try:
            count += frames.get_nowait()
        except queue.Empty:
            break
    if count:
        bars.frame(count)


@dataclass
class ExtractResult:
    clips: int
    train: int
    test: int
    classes: int
    extracted: int  # videos run through the pose stage in this run (the rest came from earlier runs)
    skipped: list[str]  # one line per video or folder left out
    warnings: list[str]


def extract_dataset(
    videoset: VideoSet,
    out: Path,
    settings: PoseSettings,
    max_persons: int = 2,
    test: str | None = None,
    group: str | None = None,
    test_fraction: float = 0.2,
    workers: int = 1,
    strict: bool = False,
    world: World = World(),
) -> ExtractResult | None:
    """Extract every video not extracted yet, then write `out` and `<out>.classes.txt` atomically.

    Under torchrun each process extracts its share of the videos into the cache; rank 0 then writes
    the pickle from all of them and returns the result (the other processes return None)."""
    if not videoset.videos:
        raise UserError("no videos to extract")
    if strict and videoset.problems:  # known before any video is read: fail at once
        raise UserError(f"--strict: {videoset.problems[0]}")
    flags, warnings = assign_splits(videoset.videos, videoset.class_names, test, group, test_fraction)
    key = fingerprint(settings, max_persons)
    targets = [cached_path(v.path, key) for v in videoset.videos]
    annotations: dict[int, dict] = {}
    for i, target in enumerate(targets):
        if target.exists() and (ann := _load_annotation(target)) is not None:
            annotations[i] = ann
    jobs = [(v, t) for i, (v, t) in enumerate(zip(videoset.videos, targets)) if i not in annotations]
    world.barrier()  # every process has listed the same unfinished videos before any is written
    mine = jobs[world.rank :: world.size]
    problems: dict[Path, str] = {}
    if mine:
        share = f"; {len(mine)} in this process, one of {world.size}" if world.size > 1 else ""
        console.err.print(
            f"extracting {len(jobs)} of {len(videoset.videos)} videos ({len(videoset.videos) - len(jobs)} done earlier{share})"
        )
        bars = _Bars(len(mine), sum(_frame_count(v.path) for v, _ in mine))
        try:
            with bars.progress:
                problems = _run_jobs(mine, settings, max_persons, workers, bars)
        except KeyboardInterrupt:
            console.err.print("extraction stopped: finished videos are kept; run the same command again to continue")
            raise
    problems = {path: problem for found in world.gather(problems) for path, problem in found.items()}  # waits for every share
    if not world.is_main:
        return None
    for i, target in enumerate(targets):
        if i not in annotations and videoset.videos[i].path not in problems:
            annotations[i] = _load_annotation(target)

    skipped = list(videoset.problems)
    names = frame_dirs(videoset.videos, videoset.class_names)
    records, split = [], {"train1": [], "test1": []}
    for i, video in enumerate(videoset.videos):
        if video.path in problems:
            skipped.append(f"{video.name}: {problems[video.path]}")
            continue
        ann = annotations[i]
        if ann["keypoint"].shape[0] == 0:
            skipped.append(f"{video.name}: nobody detected in {ann['total_frames']} frames")
            continue
        records.append({"frame_dir": names[i], "label": video.label, **ann})
        split["test1" if flags[i] else "train1"].append(names[i])
    if strict and skipped:
        raise UserError(f"--strict: {len(skipped)} skipped, first {skipped[0]}")
    if not records:
        raise UserError(f"no video gave a skeleton sequence ({len(skipped)} skipped, first {skipped[0]})")
    # A class folder none of whose files gave a skeleton (notes, a folder of annotations) is no class:
    # kept, it would be an output the model never sees an example of.
    present = sorted({r["label"] for r in records})
    warnings += [
        f"class {name}: no usable video (class left out)" for label, name in enumerate(videoset.class_names) if label not in present
    ]
    class_names = [videoset.class_names[label] for label in present]
    new_label = {old: new for new, old in enumerate(present)}
    for record in records:
        record["label"] = new_label[record["label"]]

    # The class list is made first but replaced right after the pickle: a failed pickle write leaves both as they were.
    with atomic_path(out.with_suffix(".classes.txt")) as labels:
        labels.write_text("\n".join(class_names) + "\n", encoding="utf-8")
        dump_pickle_like_mmcv({"split": split, "annotations": records}, out)
    return ExtractResult(
        clips=len(records),
        train=len(split["train1"]),
        test=len(split["test1"]),
        classes=len(class_names),
        extracted=len(jobs),
        skipped=skipped,
        warnings=warnings,
    )
