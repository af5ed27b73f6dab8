"""The demo's input video, made from the photographs of people that ship inside ultralytics.

`actionlstm demo` writes a sample skeleton pickle, trains a small demo model on it (both in
actionlstm/cli.py), then runs the full pipeline on the video made here: a slow camera move over
`zidane.jpg`, then over `bus.jpg` (2 s each by default) at 640x360 and 25 fps, zooming in from the
widest 16:9 view of the photo to 75% of it while drifting sideways, so that the pose stage meets
real people.
Nothing is downloaded: the photographs are part of the ultralytics package. The demo model's classes
are synthetic movements: its labels show the pipeline working, not what the people are doing.
"""

from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from actionlstm.errors import UserError

DEMO_SIZE = (640, 360)  # width, height
DEMO_FPS = 25.0


def ultralytics_images() -> list[np.ndarray]:
    images = []
    for name in ("zidane.jpg", "bus.jpg"):
        path = resources.files("ultralytics").joinpath("assets", name)
        image = cv2.imread(str(path))
        if image is None:
            raise UserError(f"ultralytics' sample image {name} is missing from its package")
        images.append(image)
    return images


def _pan_zoom(image: np.ndarray, frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    """A slow camera move over one photo: zoom in from its widest view of `size`'s shape to 75% of it, while drifting sideways."""
    out_w, out_h = size
    h, w = image.shape[:2]
    aspect = out_w / out_h
    full_w, full_h = (w, w / aspect) if w / h < aspect else (h * aspect, h)
    result = []
    for k in range(frames):
        t = k / max(frames - 1, 1)
        zoom = 1.0 - 0.25 * t
        crop_w, crop_h = full_w * zoom, full_h * zoom
        cx = w / 2 + (0.5 - t) * 0.1 * w
        cy = h / 2
        x0 = int(np.clip(cx - crop_w / 2, 0, w - crop_w))
        y0 = int(np.clip(cy - crop_h / 2, 0, h - crop_h))
        crop = image[y0 : y0 + int(crop_h), x0 : x0 + int(crop_w)]
        result.append(cv2.resize(crop, size, interpolation=cv2.INTER_AREA))
    return result


def write_demo_video(path: Path, seconds_per_image: float = 2.0) -> Path:
    frames_each = int(seconds_per_image * DEMO_FPS)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), DEMO_FPS, DEMO_SIZE)
    if not writer.isOpened():
        raise UserError(f"cannot write {path}")
    for image in ultralytics_images():
        for frame in _pan_zoom(image, frames_each, DEMO_SIZE):
            writer.write(frame)
    writer.release()
    return path
