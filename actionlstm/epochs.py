"""What a training epoch draws: how many windows (`epoch_windows`), which clips in which order
(`epoch_order`: every class equally often), the batches made of them (`make_batch`: a random crop
of each clip at a random speed, augmented and preprocessed), and the inputs' statistics over such
windows (`feature_statistics`), which a standardising model starts from."""

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from actionlstm.augment import AugmentConfig, SpatialAugment, drop_joints, remap_scores, sample_training_window
from actionlstm.dataset import SkeletonDataset
from actionlstm.preprocess import PreprocessConfig, preprocess, stack_windows

if TYPE_CHECKING:
    from actionlstm.train import TrainConfig


def epoch_windows(dataset: SkeletonDataset, indices: np.ndarray, pre: PreprocessConfig, cfg: "TrainConfig") -> int:
    """Windows per epoch: every clip once, and for a small set `cfg.min_epoch_windows`, fewer where
    its windows are long (at most `cfg.max_epoch_frames` frames of windows of the clips' mean length)."""
    frames = [min(dataset.num_frames(i) * pre.fps / dataset.clip_rate(i, pre.fps), pre.window) for i in indices]
    budget = math.ceil(cfg.max_epoch_frames / max(float(np.mean(frames)), 1.0))
    return max(len(indices), min(cfg.min_epoch_windows, budget))


def epoch_order(indices: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Clips for one epoch, each class drawn equally often: per class, shuffled passes over its clips,
    repeated as needed. `count` windows at least (one per clip for a large set), so a few dozen clips
    still give enough optimiser steps, and a class with fewer clips still counts as much."""
    count = max(count, len(indices))
    classes = np.unique(labels[indices])
    share = math.ceil(count / len(classes))
    drawn = []
    for c in classes:
        members = indices[labels[indices] == c]
        passes = math.ceil(share / len(members))
        drawn.append(np.concatenate([rng.permutation(members) for _ in range(passes)])[:share])
    return rng.permutation(np.concatenate(drawn))[:count]


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # inputs [B, W, F], lengths [B], labels [B]


def make_batch(
    dataset: SkeletonDataset,
    indices: np.ndarray,
    pre: PreprocessConfig,
    aug: AugmentConfig,
    spatial: SpatialAugment,
    rng: np.random.Generator,
) -> Batch:
    windows = [sample_training_window(*dataset.clip(int(i)), dataset.clip_rate(int(i), pre.fps), pre, aug, rng) for i in indices]
    keypoint, score, lengths = stack_windows(windows, pre.window)
    x = preprocess(keypoint, drop_joints(remap_scores(score, aug, rng), aug, rng), lengths, pre, augment=spatial)
    return torch.from_numpy(x), torch.from_numpy(np.maximum(lengths, 1)), torch.from_numpy(dataset.labels[indices])


def feature_statistics(
    dataset: SkeletonDataset,
    indices: np.ndarray,
    pre: PreprocessConfig,
    aug: AugmentConfig,
    seed: int,
    windows: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and spread per model input over the valid frames of `windows` training windows, cropped
    and augmented as training draws them, from a random state of their own: training then draws what
    it would have drawn without them, and every process of a distributed run gets the same numbers."""
    rng = np.random.default_rng([seed, 1 << 20])
    order = epoch_order(indices, dataset.labels, windows, rng)[:windows]
    spatial = SpatialAugment(aug, rng, pre.fps)
    total = torch.zeros(pre.num_features, dtype=torch.float64)
    squares = torch.zeros_like(total)
    count = 0
    for batch in np.array_split(order, math.ceil(len(order) / 256)):
        x, lengths, _ = make_batch(dataset, batch, pre, aug, spatial, rng)
        frames = x[torch.arange(x.shape[1])[None, :] < lengths[:, None]].double()
        total += frames.sum(0)
        squares += frames.square().sum(0)
        count += len(frames)
    mean = total / count
    return mean.float(), (squares / count - mean.square()).clamp_min(0).sqrt().float()
