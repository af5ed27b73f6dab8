"""The architecture's one rule: a clip read from the pickle and the same clip arriving frame by frame
through the live ring buffer give identical model inputs and identical Top-5."""

import numpy as np
import pytest
import torch

from actionlstm.checkpoint import load_checkpoint
from actionlstm.dataset import load_dataset, parse_annotations
from actionlstm.evaluate import predict_clip
from actionlstm.inference import clip_windows, model_input
from actionlstm.preprocess import PreprocessConfig
from pipeline.buffers import TrackBuffers
from pipeline.actions import ActionRuntime


def _feed(buffers: TrackBuffers, keypoint: np.ndarray, score: np.ndarray, timestamps: np.ndarray, track_id: int = 7) -> None:
    for t, (kp, sc) in enumerate(zip(keypoint, score)):
        buffers.update(float(timestamps[t]), np.array([track_id]), kp[None], sc[None])


def _clip_with_frames(dataset, low: int, high: int) -> int:
    lengths = np.diff(dataset.offsets)
    for index in np.flatnonzero((lengths >= low) & (lengths <= high)):
        if dataset.clip(int(index))[1].sum() > 0:  # someone is in it
            return int(index)
    pytest.fail(f"the sample pickle has no clip of {low}..{high} frames")


@pytest.mark.parametrize("frames", [(30, 110), (130, 160)], ids=["shorter-than-window", "longer-than-window"])
def test_buffer_input_equals_training_path_input(sample_pickle, frames):
    dataset = load_dataset(sample_pickle)
    cfg = PreprocessConfig()
    index = _clip_with_frames(dataset, *frames)
    keypoint, score = dataset.clip(index)

    training_input, training_lengths = model_input(clip_windows(dataset, index, cfg)[-1:], cfg)

    buffers = TrackBuffers(cfg, source_fps=25.0, img_shape=tuple(dataset.img_shapes[index]))
    _feed(buffers, keypoint, score, np.arange(len(keypoint)) / 25.0)
    live_input, live_lengths = model_input([buffers[7].window(cfg)], cfg)

    assert np.array_equal(training_lengths, live_lengths)
    assert np.array_equal(training_input, live_input)
    assert np.abs(live_input).sum() > 0  # a real, non-empty input was compared


def test_buffer_resamples_a_faster_source_to_the_same_input(sample_pickle):
    """A 50 fps stream of the same movement (every other frame interpolated) is resampled back to 25 fps."""
    dataset = load_dataset(sample_pickle)
    cfg = PreprocessConfig()
    index = _clip_with_frames(dataset, 30, 110)
    keypoint, score = dataset.clip(index)
    valid = score > 0
    both = valid[:-1] & valid[1:]
    middle_kp = np.where(both[..., None], (keypoint[:-1] + keypoint[1:]) / 2, 0.0)
    middle_sc = np.where(both, (score[:-1] + score[1:]) / 2, 0.0)
    fast_kp = np.zeros((2 * len(keypoint) - 1, 17, 2), np.float32)
    fast_sc = np.zeros((2 * len(keypoint) - 1, 17), np.float32)
    fast_kp[::2], fast_kp[1::2] = keypoint, middle_kp
    fast_sc[::2], fast_sc[1::2] = score, middle_sc

    buffers = TrackBuffers(cfg, source_fps=50.0, img_shape=tuple(dataset.img_shapes[index]))
    _feed(buffers, fast_kp, fast_sc, np.arange(len(fast_kp)) / 50.0)

    expected, _ = model_input(clip_windows(dataset, index, cfg), cfg)
    live, _ = model_input([buffers[7].window(cfg)], cfg)
    assert np.array_equal(expected, live)


def test_live_top5_equals_predict_top5(sample_pickle, trained_checkpoint):
    dataset = load_dataset(sample_pickle)
    clf = load_checkpoint(trained_checkpoint)
    index = _clip_with_frames(dataset, 30, 110)
    keypoint, score = dataset.clip(index)

    offline = predict_clip(clf, dataset, index, torch.device("cpu"))
    buffers = TrackBuffers(clf.preprocess, 25.0, tuple(dataset.img_shapes[index]))
    _feed(buffers, keypoint, score, np.arange(len(keypoint)) / 25.0)
    runtime = ActionRuntime(clf, torch.device("cpu"), smoothing=0.0)
    live = runtime.update(buffers, {7})[7]

    assert [item.label for item in live] == [item["label"] for item in offline["top5"]]
    np.testing.assert_allclose([item.prob for item in live], [item["prob"] for item in offline["top5"]], rtol=1e-5, atol=1e-6)


def test_buffer_holds_a_pickle_annotation(sample_pickle):
    """The ring buffer's contents are a valid annotation of the same format, with the same arrays."""
    dataset = load_dataset(sample_pickle)
    cfg = PreprocessConfig()
    index = _clip_with_frames(dataset, 30, 110)
    keypoint, score = dataset.clip(index)
    buffers = TrackBuffers(cfg, 25.0, tuple(int(v) for v in dataset.img_shapes[index]))
    _feed(buffers, keypoint, score, np.arange(len(keypoint)) / 25.0)

    annotation = buffers[7].to_annotation()
    annotation["label"] = 0
    parsed = parse_annotations({"split": {"live": [annotation["frame_dir"]]}, "annotations": [annotation]})
    assert np.array_equal(parsed.clip(0)[0], keypoint)
    assert np.array_equal(parsed.clip(0)[1], score)
    assert tuple(parsed.img_shapes[0]) == tuple(dataset.img_shapes[index])

