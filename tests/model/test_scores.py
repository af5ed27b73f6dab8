"""The score channel of the model input: the missing-joint mask (the default) or the detector's raw
scores (checkpoints from before the choice existed), and the training-time score remap."""

import numpy as np
import pytest

from actionlstm.augment import AugmentConfig, drop_joints, remap_scores
from actionlstm.preprocess import FEATURES_PER_JOINT, PreprocessConfig, preprocess

THRESHOLD = PreprocessConfig().score_threshold


def _windows(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two windows of 30 frames with every kind of joint: confident, unsure, below the threshold,
    undetected (0), NaN coordinates, and frames past the second window's length."""
    rng = np.random.default_rng(seed)
    keypoint = rng.uniform(100, 400, (2, 30, 17, 2)).astype(np.float32)
    score = rng.uniform(0, 1, (2, 30, 17)).astype(np.float32)
    score[rng.random(score.shape) < 0.1] = 0.0
    score[rng.random(score.shape) < 0.1] = THRESHOLD / 2
    keypoint[0, 3, 5] = np.nan
    lengths = np.array([30, 20])
    keypoint[1, 20:] = score[1, 20:] = 0.0
    return keypoint, score, lengths


def _channels(x: np.ndarray) -> np.ndarray:
    return x.reshape(*x.shape[:2], 17, FEATURES_PER_JOINT)


def test_mask_channel_is_the_missing_joint_mask_and_nothing_else_changes():
    keypoint, score, lengths = _windows()
    joints_only = dict(distances=False, slow_motion=0)  # the per-joint channels alone, 7 each
    masked = _channels(preprocess(keypoint, score, lengths, PreprocessConfig(score_feature="mask", **joints_only)))
    raw = _channels(preprocess(keypoint, score, lengths, PreprocessConfig(score_feature="raw", **joints_only)))

    seen = (score > THRESHOLD) & np.isfinite(keypoint).all(-1) & (np.arange(30)[None, :, None] < lengths[:, None, None])
    assert np.array_equal(masked[..., 6], seen.astype(np.float32))
    assert np.array_equal(raw[..., 6], np.where(seen, score, 0.0).astype(np.float32))  # the features before the choice
    assert np.array_equal(masked[..., :6], raw[..., :6])
    assert 0 < seen.mean() < 1


@pytest.mark.parametrize("remap", [lambda s: s**2 * 0.9 + 0.1, lambda s: 0.5 + 0.5 * s, lambda s: np.sqrt(s)])
def test_a_mask_model_sees_the_same_input_whatever_the_detectors_confidence(remap):
    """Another pose model scores the same joints differently; as long as it finds the same joints,
    a model on the mask sees the same input, and one on raw scores does not."""
    keypoint, score, lengths = _windows()
    other = np.where(score > THRESHOLD, remap(score), score).astype(np.float32)
    assert ((score > THRESHOLD) == (other > THRESHOLD)).all()
    for feature, same in (("mask", True), ("raw", False)):
        cfg = PreprocessConfig(score_feature=feature)
        assert np.array_equal(preprocess(keypoint, score, lengths, cfg), preprocess(keypoint, other, lengths, cfg)) == same


def test_an_unknown_score_feature_is_refused():
    with pytest.raises(ValueError, match="score_feature 'rank' is not one of raw, mask"):
        PreprocessConfig(score_feature="rank")


def test_new_models_read_the_mask_and_train_with_remapped_scores_and_older_checkpoints_mean_raw():
    """The choice of scripts/score_ablation.py; checkpoints from before it were trained on raw scores."""
    assert PreprocessConfig().score_feature == "mask"
    assert AugmentConfig().score_floor_range[1] > THRESHOLD and AugmentConfig().score_gamma_range[1] > 1
    assert PreprocessConfig.ADDED_LATER["score_feature"] == "raw"


def test_score_remap_is_monotone_per_window_and_keeps_undetected_joints():
    _, score, _ = _windows()
    remap = AugmentConfig(score_gamma_range=(0.5, 2.0), score_floor_range=(0.0, 0.5), score_noise=0.0)
    remapped = remap_scores(score, remap, np.random.default_rng(0))
    assert remapped.dtype == np.float32 and remapped.min() >= 0 and remapped.max() <= 1
    assert np.array_equal(remapped == 0, score == 0)
    for window, other in zip(score, remapped):
        order = np.argsort(window[window > 0], kind="stable")
        assert (np.diff(other[window > 0][order]) >= 0).all()
    twins = remap_scores(np.stack([score[0], score[0]]), remap, np.random.default_rng(0))
    assert not np.allclose(twins[0], twins[1])  # each window meets its own detector


def test_score_remap_moves_joints_across_the_threshold_both_ways():
    """A floor lifts an unsure joint over the threshold (a detector that sees more), a high gamma
    pushes one under it (a detector that sees less)."""
    score = np.array([[[0.02, 0.3, 0.9]]], np.float32)
    lifted = remap_scores(
        score, AugmentConfig(score_gamma_range=(1.0, 1.0), score_floor_range=(0.2, 0.2), score_noise=0.0), np.random.default_rng(0)
    )
    lowered = remap_scores(
        score, AugmentConfig(score_gamma_range=(3.0, 3.0), score_floor_range=(0.0, 0.0), score_noise=0.0), np.random.default_rng(0)
    )
    np.testing.assert_allclose(lifted, [[[0.216, 0.44, 0.92]]], rtol=1e-6)
    np.testing.assert_allclose(lowered, [[[0.02**3, 0.027, 0.729]]], rtol=1e-5)
    assert (lifted > THRESHOLD).all() and (lowered > THRESHOLD).tolist() == [[[False, False, True]]]


def test_identity_remap_leaves_scores_as_they_are():
    _, score, _ = _windows()
    same = AugmentConfig(score_gamma_range=(1.0, 1.0), score_floor_range=(0.0, 0.0), score_noise=0.0)
    assert np.array_equal(remap_scores(score, same, np.random.default_rng(0)), score)


def test_dropped_joints_are_unseen_for_the_whole_window_and_nothing_else_changes():
    _, score, _ = _windows()
    score = np.tile(score, (200, 1, 1))  # 400 windows x 17 joints: enough draws to check the rate
    dropped = drop_joints(score, AugmentConfig(drop_joint_prob=0.25), np.random.default_rng(0))
    gone = (dropped == 0) & (score != 0)
    whole = gone.any(axis=1)  # [B, J]: a joint dropped anywhere in a window ...
    assert np.array_equal(gone, np.broadcast_to(whole[:, None, :], score.shape) & (score != 0))  # ... is dropped throughout it
    assert np.array_equal(dropped[~gone], score[~gone])
    assert 0.22 < whole.mean() < 0.28
    preprocessed = preprocess(np.zeros((*score.shape, 2), np.float32) + 1, dropped, np.full(len(score), 30), PreprocessConfig())
    assert np.isfinite(preprocessed).all()


def test_no_joint_drop_draws_nothing():
    _, score, _ = _windows()
    rng = np.random.default_rng(0)
    assert drop_joints(score, AugmentConfig(drop_joint_prob=0.0), rng) is score
    assert rng.random() == np.random.default_rng(0).random()  # the random state is untouched: older recipes train as before
