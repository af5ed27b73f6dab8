"""Evaluation on a test split and Top-5 prediction for single clips."""

from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from actionlstm import console
from actionlstm.checkpoint import Classifier
from actionlstm.dataset import SkeletonDataset, load_dataset
from actionlstm.device import resolve_device
from actionlstm.errors import UserError
from actionlstm.export import load_classifier
from actionlstm.inference import predict_clips
from actionlstm.labels import class_names_for, labels_file_for
from actionlstm.reports import classification_metrics, confusion_matrix, plot_confusion_matrix, write_per_class_csv


def check_compatible(clf: Classifier, dataset: SkeletonDataset, class_names: list[str]) -> None:
    """The checkpoint must predict as many classes as the data (and labels file) define."""
    if clf.model.cfg.num_classes != len(class_names):
        raise UserError(f"the checkpoint predicts {clf.model.cfg.num_classes} classes but the data has {len(class_names)}")


def load_for_evaluation(
    data: Path, checkpoint: Path, labels: Path | None, device: str, use_cache: bool = True
) -> tuple[Classifier, SkeletonDataset, torch.device]:
    """What `evaluate` and `predict` read: the model (any format `load_classifier` takes), the data,
    and the device, the class names of the labels file (`labels_file_for`) in the model when there is one."""
    dev = resolve_device(device)
    clf = load_classifier(checkpoint, dev)
    dataset = load_dataset(data, use_cache=use_cache)
    labels = labels_file_for(labels, data)
    names = class_names_for(dataset, labels)
    check_compatible(clf, dataset, names)
    if labels is not None:
        clf.class_names = names
    return clf, dataset, dev


def evaluate(clf: Classifier, dataset: SkeletonDataset, indices: np.ndarray, device: torch.device, report_dir: Path, name: str) -> dict:
    """Metrics over the clips in `indices`, plus `<name>.confusion.png` and `<name>.per_class.csv` in `report_dir`."""
    with Progress(transient=True, console=console.err) as progress:
        task = progress.add_task("evaluating", total=None)
        probs = predict_clips(
            clf.model,
            clf.preprocess,
            dataset,
            indices,
            device,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    labels = dataset.labels[indices]
    metrics = classification_metrics(probs, labels)
    matrix = confusion_matrix(probs.argmax(-1), labels, len(clf.class_names))
    confusion_png = report_dir / f"{name}.confusion.png"
    per_class_csv = report_dir / f"{name}.per_class.csv"
    plot_confusion_matrix(matrix, clf.class_names, confusion_png, f"{name}: top-1 {metrics['top1']:.1%} on {metrics['n']} clips")
    write_per_class_csv(matrix, probs, labels, clf.class_names, per_class_csv)
    return {**metrics, "confusion_matrix_png": str(confusion_png), "per_class_csv": str(per_class_csv)}


def predict_clip(clf: Classifier, dataset: SkeletonDataset, index: int, device: torch.device, k: int = 5) -> dict:
    """Top-k classes with probabilities for one clip, and its true label."""
    probs = predict_clips(clf.model, clf.preprocess, dataset, np.array([index]), device)[0]
    order = np.argsort(-probs)[:k]
    label = int(dataset.labels[index])
    return {
        "frame_dir": str(dataset.frame_dirs[index]),
        "label": clf.class_names[label],
        "label_index": label,
        "frames": dataset.num_frames(index),
        "top5": [{"label": clf.class_names[int(c)], "prob": float(probs[c])} for c in order],
    }
