"""`actionlstm demo`, the embedded default: a sample skeleton pickle, a small demo model trained on it,
and the full pipeline run on a video of real people made from the photographs that ship inside
ultralytics.

The video is a slow camera move over `zidane.jpg`, then over `bus.jpg` (2 s each by default) at
640x360 and 25 fps, zooming in from the widest 16:9 view of the photo to 75% of it while drifting
sideways, so that the pose stage meets real people. Nothing is downloaded. The demo model's classes
are synthetic movements: its labels show the pipeline working, not what the people are doing.
"""

from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from actionlstm import console
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


def run_demo(out_dir: Path, device: str = "auto", epochs: int = 8, show: bool = False) -> int:
    """Write everything the demo makes into `out_dir`, saying each step on stderr; the run's exit
    code (130 / 143 when Ctrl-C or SIGTERM ended it, else 0)."""
    from actionlstm.checkpoint import load_checkpoint
    from actionlstm.dataset import load_dataset
    from actionlstm.device import resolve_device
    from actionlstm.evaluate import evaluate
    from actionlstm.synthetic import write_sample_pickle
    from actionlstm.train import ONE_WIDE, TrainConfig, train
    from pipeline.outputs import source_outputs
    from pipeline.recognizer import ActionRecognizer
    from pipeline.run import run_sources

    dev = resolve_device(device)
    pickle_path = out_dir / "sample_ucf101_format.pkl"
    console.err.print(f"[bold]1/3[/] writing a sample skeleton pickle (UCF101 format) to {pickle_path}")
    names = write_sample_pickle(pickle_path, num_classes=6, clips_per_class=40, seed=0)
    dataset = load_dataset(pickle_path, use_cache=False)
    checkpoint = out_dir / "demo_model.pth"
    console.err.print(f"[bold]2/3[/] training a demo model on it ({epochs} epochs)")
    # ONE_WIDE, the model whose demo the README times (about 2.5 minutes of training): the recipe's five
    # members would make a first run wait longer for generated movements.
    train(dataset, dataset.split_indices("train1"), names, checkpoint, dev, TrainConfig(epochs=epochs, batch_size=32, **ONE_WIDE))
    metrics = evaluate(load_checkpoint(checkpoint, dev), dataset, dataset.split_indices("test1"), dev, out_dir, "demo_model.test1")
    console.out.print(f"demo model: test top-1 {metrics['top1']:.1%} on {metrics['n']} sample clips")
    video = write_demo_video(out_dir / "demo_input.mp4")
    console.err.print(f"[bold]3/3[/] running the full pipeline (real YOLO-pose) on {video}")
    recognizer = ActionRecognizer(checkpoint, device=device)  # trained on the sample: its overlay says so
    outputs = source_outputs(
        [str(video)], save=out_dir / "demo_annotated.mp4", jsonl=out_dir / "demo_predictions.jsonl", segments=None, timeline=None
    )
    (summary,) = run_sources([str(video)], recognizer, outputs, show, realtime=False)
    return summary.exit_code
