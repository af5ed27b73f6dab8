"""Windows in, class probabilities out: the inference path shared by evaluate, predict and the live pipeline."""

from collections.abc import Callable

import numpy as np
import torch

from actionlstm.dataset import SkeletonDataset
from actionlstm.model import ActionLSTM
from actionlstm.preprocess import PreprocessConfig, eval_window_starts, person_seen, preprocess, stack_windows

Window = tuple[np.ndarray, np.ndarray]  # keypoint [T, 17, 2] pixels, score [T, 17]


def model_input(windows: list[Window], pre: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """Exactly what the model sees for these windows: features [B, W, F] and lengths [B]."""
    keypoint, score, lengths = stack_windows(windows, pre.window)
    return preprocess(keypoint, score, lengths, pre), lengths


@torch.inference_mode()
def predict_windows(model: ActionLSTM, pre: PreprocessConfig, windows: list[Window], device: torch.device) -> np.ndarray:
    """Softmax probabilities [B, C] for a batch of windows, in one forward pass."""
    x, lengths = model_input(windows, pre)
    logits = model(torch.from_numpy(x).to(device), torch.from_numpy(np.maximum(lengths, 1)).to(device))
    return torch.softmax(logits.float(), dim=-1).cpu().numpy()


def clip_windows(dataset: SkeletonDataset, index: int, pre: PreprocessConfig) -> list[Window]:
    """The windows that cover clip `index` (one for clips up to the window length)."""
    keypoint, score = dataset.clip_at(index, pre)
    return [(keypoint[s : s + pre.window], score[s : s + pre.window]) for s in eval_window_starts(len(keypoint), pre.window)]


def predict_clips(
    model: ActionLSTM,
    pre: PreprocessConfig,
    dataset: SkeletonDataset,
    indices: np.ndarray,
    device: torch.device,
    batch_windows: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Clip-level probabilities [N, C]: the mean over the windows that cover each clip, each window
    weighted by the frames in which the person is seen. `on_progress(done, total)` hears of the
    windows classified so far: once when they are known, then after every batch."""
    was_training = model.training
    model.eval()
    owners: list[int] = []
    windows: list[Window] = []
    for row, index in enumerate(indices):
        for window in clip_windows(dataset, int(index), pre):
            owners.append(row)
            windows.append(window)
    # A window counts by the frames that show the person (plus a little, so a clip of empty windows
    # still gets their plain mean): where the person has left the picture, a window says nothing.
    weights = np.array([person_seen(score, pre).sum() for _, score in windows], np.float64) + 1e-3
    sums = np.zeros((len(indices), model.cfg.num_classes), np.float64)
    totals = np.zeros(len(indices), np.float64)
    if on_progress is not None:
        on_progress(0, len(windows))
    for start in range(0, len(windows), batch_windows):
        probs = predict_windows(model, pre, windows[start : start + batch_windows], device)
        rows = np.asarray(owners[start : start + batch_windows])
        w = weights[start : start + batch_windows]
        np.add.at(sums, rows, probs * w[:, None])
        np.add.at(totals, rows, w)
        if on_progress is not None:
            on_progress(start + len(probs), len(windows))
    model.train(was_training)
    return (sums / np.maximum(totals, 1e-12)[:, None]).astype(np.float32)
