"""How the built-in falls recipe fares through another camera: GMDCSA24's held-out clips, every frame
changed as a different camera would show it, run live through the leave-one-subject-out models.

    python scripts/camera_study.py                                  # every camera below, models in runs/camera_study
    python scripts/camera_study.py --camera original --camera half-fps

The hidden test of a fall detector is footage from another lab: other people, rooms and cameras.
Leave one subject out (scripts/train_builtin.py) measures other people only: all 23 clips share two
cameras in one home. Here each held-out clip is rewritten losslessly (FFV1) with one change of camera,
and replayed as `actionlstm run CLIP --checkpoint falls --alert fall` would replay it, with the model
trained without that subject. A camera change that costs falls or raises false alarms here is one
real footage will meet. The four models are trained once (train_builtin.py's recipe, about 15
minutes on 2 cores) and kept in --models for the next run.
"""

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import train_builtin as builtin

ROOT = Path(__file__).resolve().parents[1]

GREY = (114, 114, 114)  # what a frame shows where the camera saw nothing


def mirror(frame: np.ndarray) -> np.ndarray:
    return frame[:, ::-1].copy()


def tilted(frame: np.ndarray) -> np.ndarray:
    """A camera rolled 10 degrees."""
    h, w = frame.shape[:2]
    return cv2.warpAffine(frame, cv2.getRotationMatrix2D((w / 2, h / 2), 10, 1.0), (w, h), borderValue=GREY)


def farther(frame: np.ndarray) -> np.ndarray:
    """The room at half its size in the picture, as from a camera twice as far."""
    h, w = frame.shape[:2]
    canvas = np.full_like(frame, GREY[0])
    canvas[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return canvas


def looking_down(frame: np.ndarray) -> np.ndarray:
    """The keystone of a camera pitched further down: the top of the picture narrows to 70%."""
    h, w = frame.shape[:2]
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    keystone = np.float32([[0.15 * w, 0], [0.85 * w, 0], [w, h], [0, h]])
    return cv2.warpPerspective(frame, cv2.getPerspectiveTransform(corners, keystone), (w, h), borderValue=GREY)


def low_resolution(frame: np.ndarray) -> np.ndarray:
    """A camera 320 pixels wide."""
    h, w = frame.shape[:2]
    return cv2.resize(frame, (320, int(round(h * 320 / w))), interpolation=cv2.INTER_AREA)


# name -> (the change to every frame kept, keep every n-th frame)
CAMERAS: dict[str, tuple[Callable[[np.ndarray], np.ndarray] | None, int]] = {
    "original": (None, 1),
    "mirrored": (mirror, 1),
    "rolled-10": (tilted, 1),
    "twice-as-far": (farther, 1),
    "looking-down": (looking_down, 1),
    "320-wide": (low_resolution, 1),
    "half-fps": (None, 2),
}


def as_seen_by(camera: str, video: Path, folder: Path) -> Path:
    """`video` as `camera` would have recorded it (the original file itself for `original`)."""
    change, every = CAMERAS[camera]
    if change is None and every == 1:
        return video
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    out, writer, index = folder / f"{video.stem}.avi", None, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % every == 0:
            frame = change(frame) if change else frame
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), fps / every, (frame.shape[1], frame.shape[0]))
            writer.write(frame)
        index += 1
    capture.release()
    writer.release()
    return out


def loso_models(data: Path, models: Path) -> dict[str, Path]:
    """Subject -> the model trained without them (train_builtin.py's recipe and descent cue), trained
    once and kept in `models`."""
    import torch

    torch.set_num_threads(builtin.TORCH_THREADS)
    models.mkdir(parents=True, exist_ok=True)
    windows = models / "windows.pkl"
    if not windows.exists():
        skeletons = builtin.extract(data, models / "skeletons.pkl")
        builtin.window_pickle(skeletons, builtin.read_annotations(data / "annotations"), windows, builtin.RECIPE["pre"])
    return builtin.loso_models(windows, models)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "falls")
    parser.add_argument(
        "--models", type=Path, default=ROOT / "runs" / "camera_study", help="where the leave-one-subject-out models are kept"
    )
    parser.add_argument("--camera", action="append", choices=list(CAMERAS), help="repeatable; default: all")
    args = parser.parse_args()
    models = loso_models(args.data, args.models)
    annotations = builtin.read_annotations(args.data / "annotations")
    results = []
    for camera in args.camera or list(CAMERAS):
        with tempfile.TemporaryDirectory(prefix="camera-study-") as tmp:
            seen = lambda video, camera=camera, tmp=tmp: as_seen_by(camera, video, Path(tmp))  # noqa: E731 (bound to this camera)
            result = {"camera": camera, **builtin.replay_held_out(args.data, annotations, models, seen)}
        results.append(result)
        missed = [c["video"] for c in result["clips"] if c["fall"] and not c["caught"]]
        alarmed = [c["video"] for c in result["clips"] if not c["fall"] and c["false_alarm"]]
        print(
            f"{camera:<13} falls caught {result['falls'] - len(missed):>2} of {result['falls']} (missed {', '.join(missed) or '-'}), "
            f"daily activities with a fall event {len(alarmed)} of {result['daily_activities']} "
            f"({', '.join(alarmed) or '-'}), median delay {result['delay_median_s']} s",
            flush=True,
        )
    (args.models / "cameras.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
