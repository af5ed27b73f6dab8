"""The architecture's one rule: a clip read from the pickle and the same clip arriving frame by frame
through the live ring buffer give identical model inputs and identical Top-5."""

import numpy as np
import pytest
import torch

from actionlstm.checkpoint import load_checkpoint
from actionlstm.dataset import load_dataset, parse_annotations
from actionlstm.evaluate import predict_clip
from actionlstm.inference import clip_windows, model_input
from actionlstm.preprocess import FEATURES_PER_JOINT, SLOW_FEATURES_PER_JOINT, PreprocessConfig
from pipeline.actions import ActionRuntime
from pipeline.buffers import TrackBuffers


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


def test_a_30_fps_clip_from_the_pickle_and_from_the_camera_give_the_same_input():
    """Both paths resample to the training rate, and both count a joint scored at or below the
    threshold (an occluded joint the pose model guessed) as missing rather than blending it in."""
    cfg = PreprocessConfig()
    rng = np.random.default_rng(3)
    frames = 90
    t = np.arange(frames) / 30.0
    keypoint = (200.0 + 40.0 * np.sin(2 * np.pi * t)[:, None, None] + rng.normal(0, 3, (frames, 17, 2))).astype(np.float32)
    score = rng.uniform(0.5, 1.0, (frames, 17)).astype(np.float32)
    score[rng.random((frames, 17)) < 0.1] = 0.03  # guessed joints, below the threshold
    clip = {
        "frame_dir": "clip",
        "label": 0,
        "img_shape": (480, 640),
        "original_shape": (480, 640),
        "total_frames": frames,
        "keypoint": keypoint[None],
        "keypoint_score": score[None],
        "fps": 30.0,
    }
    dataset = parse_annotations({"split": {"test1": ["clip"]}, "annotations": [clip]})

    pickle_input, _ = model_input(clip_windows(dataset, 0, cfg), cfg)
    buffers = TrackBuffers(cfg, source_fps=30.0, img_shape=(480, 640))
    _feed(buffers, keypoint, score, t)
    live_input, _ = model_input([buffers[7].window(cfg)], cfg)

    assert np.array_equal(pickle_input, live_input)
    # Target k of 75 sits at source frame 89 - 1.2 * (74 - k): seen only where the frames on both sides are.
    position = 89 - 1.2 * (74 - np.arange(75))
    left = np.floor(position + 1e-6).astype(int)
    on_frame = np.isclose(position, left)
    right = np.where(on_frame, left, left + 1)
    good = score > cfg.score_threshold
    expected_seen = good[left] & good[right]
    per_joint = FEATURES_PER_JOINT + (SLOW_FEATURES_PER_JOINT if cfg.slow_motion else 0)
    score_channel = live_input[0, :75, : 17 * per_joint].reshape(75, 17, per_joint)[..., 6]
    assert np.array_equal(score_channel, expected_seen.astype(np.float32))


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
