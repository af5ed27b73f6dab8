"""What `check-camera` reports when a camera sees worse: a real clip darkened, and shrunk into a larger
frame (a camera four times as far), checked as recorded and with the `--imgsz` the check advises.
The figures behind the check's thresholds (pipeline/camera_check.py; docs/camera-check.md).

    python scripts/camera_check_study.py ../shared/data/falls/adl/S3_ADL_19.mp4 --out /tmp/camstudy
"""

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pipeline.camera_check import check_camera
from pipeline.recognizer import ActionRecognizer


def darkened(factor: float, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Brightness divided by `factor`, with the sensor noise a dim room brings (3 grey levels)."""
    rng = np.random.default_rng(seed)
    return lambda image: np.clip(image.astype(np.float32) / factor + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def far(image: np.ndarray) -> np.ndarray:
    """The frame shrunk to a quarter of its size inside a grey frame twice as large: people a quarter as tall."""
    height, width = image.shape[:2]
    canvas = np.full((2 * height, 2 * width, 3), 90, np.uint8)
    y, x = height * 3 // 4, width * 3 // 4
    canvas[y : y + height // 4, x : x + width // 4] = cv2.resize(image, (width // 4, height // 4), interpolation=cv2.INTER_AREA)
    return canvas


def write(source: Path, out: Path, change: Callable[[np.ndarray], np.ndarray]) -> Path:
    capture = cv2.VideoCapture(str(source))
    fps, writer = capture.get(cv2.CAP_PROP_FPS), None
    while (read := capture.read())[0]:
        image = change(read[1])
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (image.shape[1], image.shape[0]))
        writer.write(image)
    capture.release()
    writer.release()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path, help="an everyday clip (no fall in it)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the changed clips")
    parser.add_argument("--checkpoint", default="falls")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clips = {
        "as recorded": args.video,
        "1/8 as bright": write(args.video, args.out / "dark8.avi", darkened(8)),
        "1/16 as bright": write(args.video, args.out / "dark16.avi", darkened(16)),
        "4x as far": write(args.video, args.out / "far.avi", far),
    }
    rows = []
    for imgsz in (640, 1280):
        recognizer = ActionRecognizer(args.checkpoint, device="cpu", imgsz=imgsz, draw=False)
        for name, clip in clips.items():
            if imgsz == 640 or name == "4x as far":
                figures = check_camera(recognizer, [clip]).to_json()
                keys = ("person_share", "keypoint_confidence", "person_height", "person_height_input", "torso_seen", "false_alarms")
                rows.append({"clip": name, "imgsz": imgsz, **{k: figures["total"][k] for k in keys}, "advice": figures["advice"]})
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
