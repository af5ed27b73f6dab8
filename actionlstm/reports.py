"""Metrics and the pictures people would rather see than read: confusion matrix, training curves."""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from actionlstm.atomic import atomic_path  # noqa: E402


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Top-1, top-5 and mean per-class accuracy (classes absent from `labels` are skipped)."""
    top5 = np.argsort(-probs, axis=1)[:, :5]
    hit1 = top5[:, 0] == labels
    hit5 = (top5 == labels[:, None]).any(axis=1)
    present = np.unique(labels)
    per_class = [hit1[labels == c].mean() for c in present]
    return {
        "top1": float(hit1.mean()),
        "top5": float(hit5.mean()),
        "mean_class_acc": float(np.mean(per_class)),
        "n": int(len(labels)),
    }


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def _save_figure(fig: plt.Figure, path: Path) -> None:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path, title: str) -> None:
    """Row-normalised (each true class sums to 1); names are shown when they still fit."""
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = matrix / np.maximum(rows, 1)
    n = len(class_names)
    size = min(max(6.0, n * 0.22), 24.0)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(normalised, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 110:
        font = 8 if n <= 30 else 4
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=font)
        ax.set_yticks(range(n), class_names, fontsize=font)
    _save_figure(fig, path)


def write_per_class_csv(matrix: np.ndarray, probs: np.ndarray, labels: np.ndarray, class_names: list[str], path: Path) -> None:
    top5 = np.argsort(-probs, axis=1)[:, :5]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "class", "clips", "top1", "top5", "most_confused_with"])
            for c, name in enumerate(class_names):
                clips = int(matrix[c].sum())
                mask = labels == c
                top5_acc = float((top5[mask] == c).any(axis=1).mean()) if clips else float("nan")
                others = matrix[c].copy()
                others[c] = 0
                confused = class_names[int(others.argmax())] if others.any() else ""
                writer.writerow(
                    [c, name, clips, f"{matrix[c, c] / clips:.4f}" if clips else "", f"{top5_acc:.4f}" if clips else "", confused]
                )


EPOCH_LOG_COLUMNS = ("epoch", "loss", "train_top1", "val_top1", "lr", "seconds")


def write_epoch_log(history: list[dict], path: Path) -> None:
    """One CSV row per epoch, the `results.csv` that ultralytics users look for beside the weights."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, EPOCH_LOG_COLUMNS, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(history)


def plot_training_curves(history: list[dict], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["loss"] for h in history], marker="o")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    right.plot(epochs, [h["train_top1"] for h in history], marker="o", label="train (augmented windows)")
    right.plot(epochs, [h["val_top1"] for h in history], marker="o", label="validation (clips)")
    right.set_xlabel("epoch")
    right.set_ylabel("top-1 accuracy")
    right.set_ylim(0, 1)
    right.legend()
    fig.suptitle("ActionLSTM training")
    _save_figure(fig, path)
