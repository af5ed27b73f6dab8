"""INT8 YOLO-pose for OpenVINO: NNCF post-training quantisation of the FP32 export.

On CPUs the network is most of a frame's cost (`pipeline.pose`); its INT8 copy runs yolo11n-pose
about 1.4x faster on this project's 2-core machine (no VNNI; 1.46x in batches of four) and more where the CPU has VNNI or
AMX, with keypoints within about 1% of a person's height of FP32's (`scripts/int8_agreement.py`).

Quantisation needs frames that look like what the camera will show, to set each layer's range.
By default they are generated from the two photographs ultralytics ships (people in a street and
indoors), cropped, scaled down to camera sizes, flipped and lit differently, so nothing is
downloaded and the result is the same on every machine; `actionlstm quantize-pose VIDEO...`
calibrates on the user's own footage instead. The head's box and keypoint decoding stays in FP32,
as ultralytics' own INT8 export keeps it: rounding there moves keypoints by pixels.
"""

import contextlib
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from actionlstm.errors import UserError

CALIBRATION_FRAMES = 96  # enough for stable ranges (NNCF's statistics settle after a few dozen frames)
LETTERBOX_GREY = 114  # ultralytics' letterbox padding value


def letterbox(image: np.ndarray, imgsz: int) -> np.ndarray:
    """A BGR frame as the network's input, [1, 3, imgsz, imgsz] RGB in 0-1, letterboxed as
    ultralytics' predictor does for a fixed-size export (scaled to fit, centred, grey padding)."""
    height, width = image.shape[:2]
    scale = min(imgsz / height, imgsz / width)
    new_w, new_h = round(width * scale), round(height * scale)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((imgsz, imgsz, 3), LETTERBOX_GREY, np.uint8)
    top, left = (imgsz - new_h) // 2, (imgsz - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return np.ascontiguousarray(canvas[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0


def generated_frames(count: int = CALIBRATION_FRAMES, seed: int = 0) -> list[np.ndarray]:
    """`count` BGR frames made from ultralytics' sample photographs: random crops (a third of the
    picture to all of it), scaled to a camera's size (240 to 1080 lines), mirrored, brighter or
    darker, sometimes grey, blurred or noisy, the way small and cheap cameras see people."""
    from ultralytics.utils import ASSETS

    photos = [cv2.imread(str(path)) for path in sorted(Path(ASSETS).glob("*.jpg"))]
    photos = [photo for photo in photos if photo is not None]
    if not photos:
        raise UserError(f"no sample photographs in {ASSETS} to calibrate INT8 pose with; give videos (actionlstm quantize-pose VIDEO...)")
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        photo = photos[k % len(photos)]
        height, width = photo.shape[:2]
        area = rng.uniform(0.35, 1.0)
        aspect = rng.uniform(0.75, 1.33)
        crop_w = int(min(width, width * np.sqrt(area * aspect)))
        crop_h = int(min(height, height * np.sqrt(area / aspect)))
        x, y = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
        frame = photo[y : y + crop_h, x : x + crop_w]
        lines = int(rng.choice([240, 288, 360, 480, 720, 1080]))
        frame = cv2.resize(frame, (max(1, round(crop_w * lines / crop_h)), lines), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            frame = frame[:, ::-1]
        frame = cv2.convertScaleAbs(frame, alpha=rng.uniform(0.6, 1.3), beta=rng.uniform(-30, 30))
        if rng.random() < 0.2:
            frame = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)  # a camera at night
        if rng.random() < 0.2:
            frame = cv2.GaussianBlur(frame, (5, 5), 0)
        if rng.random() < 0.2:
            frame = np.clip(frame + rng.normal(0, 8, frame.shape), 0, 255).astype(np.uint8)
        frames.append(np.ascontiguousarray(frame))
    return frames


def video_frames(videos: list[Path], count: int = CALIBRATION_FRAMES) -> list[np.ndarray]:
    """`count` frames spread evenly over the user's videos (their own cameras, rooms and light)."""
    from pipeline.sources import VideoFileSource

    per_video = max(1, -(-count // len(videos)))
    frames = []
    for video in videos:
        with VideoFileSource(video) as source:
            total = source.frame_count or per_video
            keep = set(np.linspace(0, total - 1, per_video).round().astype(int).tolist())
            frames += [frame.image for frame in source if frame.index in keep]
    if not frames:
        raise UserError("no frame could be read from the calibration videos")
    return frames[:count]


def head_scope(model):
    """The operations NNCF must leave in FP32: the decoding of the last module (the pose head),
    found by its name in the export, and every sigmoid, as ultralytics' INT8 export leaves them."""
    import nncf

    layers = [int(m) for op in model.get_ordered_ops() for m in re.findall(r"__module\.model\.(\d+)/", op.get_friendly_name())]
    head = rf".*__module\.model\.{max(layers)}/.*" if layers else r"$^"
    return nncf.IgnoredScope(patterns=[f"{head}/Add", f"{head}/Sub.*", f"{head}/Mul.*", f"{head}/Div.*", r".*\.dfl.*"], types=["Sigmoid"])


def quantize_openvino(fp32_xml: Path, target_xml: Path, frames: list[np.ndarray], imgsz: int) -> None:
    """Write the INT8 copy of the FP32 OpenVINO model `fp32_xml` to `target_xml`, its ranges set on
    `frames` (BGR, any size; letterboxed here as the predictor will)."""
    import logging

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime", as NNCF imports it
    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.ERROR)  # its notes are about internals
    model = ov.Core().read_model(str(fp32_xml))
    inputs = [letterbox(frame, imgsz) for frame in frames]
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout is the command's output (JSON, say)
        quantized = nncf.quantize(
            model,
            nncf.Dataset(inputs),
            preset=nncf.QuantizationPreset.MIXED,  # asymmetric activations: SiLU outputs are not centred on 0
            subset_size=len(inputs),
            ignored_scope=head_scope(model),
        )
    ov.save_model(quantized, str(target_xml), compress_to_fp16=False)
