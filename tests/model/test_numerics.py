"""Fast checks of the numerics against hand-derived values: resampling, normalisation, flips, padding,
the live runtime's smoothing and stride, group hold-outs, resumed training and the metrics."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

import actionlstm.epochs as epochs
import actionlstm.train as training
from actionlstm.augment import AugmentConfig, SpatialAugment
from actionlstm.checkpoint import Classifier
from actionlstm.dataset import SkeletonDataset, holdout_by_group, load_dataset
from actionlstm.inference import model_input, predict_windows
from actionlstm.model import ActionLSTM, ModelConfig, reverse_within
from actionlstm.preprocess import PAIRS, PreprocessConfig, pair_distances, preprocess, resample, stack_windows, velocity
from actionlstm.reports import classification_metrics, confusion_matrix, write_per_class_csv
from actionlstm.resume import resume_path
from actionlstm.skeleton import NUM_JOINTS
from actionlstm.synthetic import TEMPLATE, write_sample_pickle
from actionlstm.train import TrainConfig, train
from actionlstm.videoset import UCF101_GROUP, Video, assign_splits, group_of
from pipeline.actions import ActionRuntime
from pipeline.buffers import TrackBuffers

CPU = torch.device("cpu")
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_WRIST, RIGHT_WRIST = 5, 6, 9, 10


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from more threads, and on a busy machine waiting threads make them slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _moving_person(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel keypoints [T, 17, 2] of a person who sways and waves, and their scores [T, 17]."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None]
    pose = TEMPLATE[None] + 0.1 * np.sin(0.3 * t + rng.uniform(0, 6, (1, NUM_JOINTS, 2)))
    keypoint = (pose * 200 + np.array([320.0, 240.0])).astype(np.float32)
    score = rng.uniform(0.5, 1.0, (frames, NUM_JOINTS)).astype(np.float32)
    return keypoint, score


# --- resampling -----------------------------------------------------------------------------------


def test_resampling_30_to_25_fps_interpolates_between_neighbouring_frames():
    """7 frames at 30 fps span 0.2 s: 6 targets at 25 fps, at source positions 0, 1.2, 2.4, 3.6, 4.8, 6."""
    frames = np.arange(7, dtype=np.float32)
    keypoint = np.zeros((7, NUM_JOINTS, 2), np.float32)
    keypoint[:, :, 0] = (frames**2)[:, None]  # a curve, so interpolation is not the identity on it
    keypoint[:, :, 1] = 100 - 10 * frames[:, None]
    score = np.repeat((0.5 + 0.05 * frames)[:, None], NUM_JOINTS, axis=1)

    kp, sc = resample(keypoint, score, frames / 30.0, fps=25.0)

    # Position p between frames i and i+1 blends (1 - (p - i)) * v[i] + (p - i) * v[i+1].
    expected_x = [0.0, 0.8 * 1 + 0.2 * 4, 0.6 * 4 + 0.4 * 9, 0.4 * 9 + 0.6 * 16, 0.2 * 16 + 0.8 * 25, 36.0]
    expected_y = [100.0, 88.0, 76.0, 64.0, 52.0, 40.0]  # linear in the frame: 100 - 10 p
    expected_score = [0.5, 0.56, 0.62, 0.68, 0.74, 0.8]
    np.testing.assert_allclose(kp[:, 3, 0], expected_x, atol=1e-4)
    np.testing.assert_allclose(kp[:, 3, 1], expected_y, atol=1e-4)
    np.testing.assert_allclose(sc[:, 3], expected_score, atol=1e-6)
    assert kp.shape == (6, NUM_JOINTS, 2) and sc.shape == (6, NUM_JOINTS)


def test_resampling_marks_a_joint_missing_where_either_neighbour_misses_it():
    frames = np.arange(7, dtype=np.float32)
    keypoint = np.repeat(frames[:, None, None], NUM_JOINTS, axis=1).repeat(2, axis=2) + 10
    score = np.full((7, NUM_JOINTS), 0.9, np.float32)
    keypoint[2, 0] = 0.0  # the nose is missed in frame 2 (stored as zeros, as the pickle does)
    score[2, 0] = 0.0
    keypoint[4, 1] = np.nan  # the left eye has no coordinates in frame 4
    # Frame 6 ends the window and is a target itself; joint 2 is missing there.
    keypoint[6, 2] = 0.0
    score[6, 2] = 0.0

    kp, sc = resample(keypoint, score, frames / 30.0, fps=25.0)

    # Targets at 1.2 (frames 1|2) and 2.4 (2|3) need frame 2: the nose is missing there, nowhere else.
    assert sc[:, 0].tolist() == pytest.approx([0.9, 0.0, 0.0, 0.9, 0.9, 0.9])
    assert np.all(kp[[1, 2], 0] == 0.0)
    np.testing.assert_allclose(kp[3, 0], [13.6, 13.6], atol=1e-4)  # 3.6 between frames 3 and 4: 10 + 3.6
    # Targets at 3.6 (3|4) and 4.8 (4|5) need frame 4, where the left eye is NaN.
    assert sc[:, 1].tolist() == pytest.approx([0.9, 0.9, 0.9, 0.0, 0.0, 0.9])
    assert np.all(kp[[3, 4], 1] == 0.0) and np.isfinite(kp).all()
    # A target that falls on a frame takes it as it is, missing joint included.
    assert sc[5, 2] == 0.0 and np.all(kp[5, 2] == 0.0)
    np.testing.assert_allclose(kp[5, 3], [16.0, 16.0])


def test_live_resampling_treats_a_joint_at_or_below_the_score_threshold_as_missing():
    """The live pose model reports every joint, occluded ones with a low score and a guessed position."""
    cfg = PreprocessConfig()
    keypoint = np.full((7, NUM_JOINTS, 2), 200.0, np.float32)
    score = np.full((7, NUM_JOINTS), 0.9, np.float32)
    keypoint[2, 0] = (900.0, 900.0)  # frame 2's nose: a guess, scored below the threshold
    score[2, 0] = 0.03
    buffers = TrackBuffers(cfg, source_fps=30.0, img_shape=(480, 640))
    for t in range(7):
        buffers.update(t / 30.0, np.array([1]), keypoint[t][None], score[t][None])

    _, sc = buffers[1].window(cfg)  # targets at source frames 0, 1.2, 2.4, 3.6, 4.8, 6

    assert sc[1, 0] <= cfg.score_threshold and sc[2, 0] <= cfg.score_threshold  # they need frame 2
    assert np.all(sc[[0, 3, 4, 5], 0] > cfg.score_threshold)


def test_resampling_at_the_same_rate_returns_the_frames_unchanged_and_window_keeps_the_newest():
    keypoint, score = _moving_person(40)
    score[10:13] = 0.0  # an empty stretch stays empty
    keypoint[10:13] = 0.0
    timestamps = 5.0 + np.arange(40) / 25.0
    kp, sc = resample(keypoint, score, timestamps, fps=25.0)
    assert np.array_equal(kp, keypoint) and np.array_equal(sc, score)
    kp, sc = resample(keypoint, score, timestamps, fps=25.0, window=16)
    assert np.array_equal(kp, keypoint[-16:]) and np.array_equal(sc, score[-16:])


# --- normalisation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scale, offset", [(2.5, (400.0, -120.0)), (0.3, (-50.0, 900.0))])
def test_model_input_does_not_depend_on_where_the_person_stands_or_how_large_they_are(scale, offset):
    cfg = PreprocessConfig(window=40)
    keypoint, score = _moving_person(40)
    score[5, 3:9] = 0.0  # some missed joints, stored as zeros
    keypoint[5, 3:9] = 0.0
    short = (keypoint[:25], score[:25])  # and a window shorter than the model's
    moved = [(kp * scale + np.array(offset, np.float32), sc) for kp, sc in [(keypoint, score), short]]

    before, _ = model_input([(keypoint, score), short], cfg)
    after, _ = model_input(moved, cfg)

    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)
    assert np.abs(before).max() > 0.5  # real features were compared, not zeros


def test_padding_frames_hold_zero_features_whatever_they_contain():
    cfg = PreprocessConfig(window=40)
    keypoint, score, lengths = stack_windows([_moving_person(25), _moving_person(40, seed=1)], cfg.window)
    clean = preprocess(keypoint, score, lengths, cfg)
    keypoint[0, 25:] = np.random.default_rng(0).uniform(-1e4, 1e4, keypoint[0, 25:].shape)
    score[0, 25:] = 0.9
    assert np.array_equal(preprocess(keypoint, score, lengths, cfg), clean)
    assert np.all(clean[0, 25:] == 0.0)


# --- left/right flip ------------------------------------------------------------------------------


def _flip() -> SpatialAugment:
    """A spatial augmentation that only mirrors (no rotation, no scaling)."""
    return SpatialAugment(
        AugmentConfig(rotate_degrees=0.0, scale_range=(1.0, 1.0), flip_prob=1.0, yaw_degrees=0.0, pitch_degrees=0.0),
        np.random.default_rng(0),
    )


def test_flipping_twice_gives_back_the_same_skeleton():
    keypoint, score = _moving_person(20)
    coords = (keypoint[None] - 300) / 200
    score = score[None].copy()
    score[0, 4, LEFT_WRIST] = 0.0  # a missing joint must come back where it was
    valid = score > 0.05
    once = _flip()(coords, score, valid)
    twice = _flip()(*once)
    np.testing.assert_allclose(twice[0], np.where(valid[..., None], coords, 0.0), atol=1e-6)
    assert np.array_equal(twice[1], score) and np.array_equal(twice[2], valid)


def test_a_flip_mirrors_x_and_turns_a_raised_left_arm_into_a_raised_right_arm():
    """TEMPLATE is left/right symmetric about x = 0, so the mirror image of a raised left wrist is the
    same person with the right wrist raised."""
    left_up = TEMPLATE.copy()
    left_up[LEFT_WRIST] += (0.1, -0.6)
    right_up = TEMPLATE.copy()
    right_up[RIGHT_WRIST] += (-0.1, -0.6)
    score = np.linspace(0.5, 0.9, NUM_JOINTS, dtype=np.float32)[None, None]
    valid = np.ones((1, 1, NUM_JOINTS), bool)

    coords, flipped_score, _ = _flip()(left_up[None, None], score, valid)

    np.testing.assert_allclose(coords[0, 0], right_up, atol=1e-6)
    # Scores travel with their joints: the left shoulder's score is now the right shoulder's.
    assert flipped_score[0, 0, RIGHT_SHOULDER] == score[0, 0, LEFT_SHOULDER]
    assert flipped_score[0, 0, LEFT_SHOULDER] == score[0, 0, RIGHT_SHOULDER]
    assert flipped_score[0, 0, 0] == score[0, 0, 0]  # the nose has no other side


# --- distances and slow motion -----------------------------------------------------------------------


def test_feature_count_per_setting():
    """17 joints x 7, plus 17 x 2 for the slow velocity, plus 17 * 16 / 2 = 136 joint pairs."""
    assert PreprocessConfig(distances=False, slow_motion=0).num_features == 119
    assert PreprocessConfig(distances=False, slow_motion=4).num_features == 153
    assert PreprocessConfig(distances=True, slow_motion=0).num_features == 255
    assert PreprocessConfig().num_features == 289


def test_velocity_over_a_gap_is_the_change_per_second_and_zero_where_an_end_is_missing():
    """x = 0, 1, 3, 6, 10 at 25 fps over 2 frames: (3 - 0) * 12.5, (6 - 1) * 12.5, (10 - 3) * 12.5."""
    coords = np.zeros((1, 5, NUM_JOINTS, 2), np.float32)
    coords[0, :, 0, 0] = [0, 1, 3, 6, 10]
    valid = np.ones((1, 5, NUM_JOINTS), bool)
    np.testing.assert_allclose(velocity(coords, valid, 25.0, 2)[0, :, 0, 0], [0, 0, 37.5, 62.5, 87.5])
    valid[0, 1, 0] = False  # frame 1 misses the joint: the velocity that starts there is unknown
    np.testing.assert_allclose(velocity(coords, valid, 25.0, 2)[0, :, 0, 0], [0, 0, 37.5, 0, 87.5])
    assert not velocity(coords, valid, 25.0, 5).any()  # a gap as long as the window: nothing to measure


def test_pair_distances_are_euclidean_and_zero_for_a_missing_joint():
    """Nose at (0, 0), left shoulder at (3, 4), right shoulder at (-3, 4): 5, 5 and 6 apart."""
    coords = np.zeros((1, 1, NUM_JOINTS, 2), np.float32)
    coords[0, 0, LEFT_SHOULDER] = (3, 4)
    coords[0, 0, RIGHT_SHOULDER] = (-3, 4)
    valid = np.zeros((1, 1, NUM_JOINTS), bool)
    valid[0, 0, [0, LEFT_SHOULDER, RIGHT_SHOULDER]] = True
    distances = pair_distances(coords, valid)[0, 0]
    pair = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(*PAIRS))}
    assert distances[pair[0, LEFT_SHOULDER]] == pytest.approx(5.0)
    assert distances[pair[0, RIGHT_SHOULDER]] == pytest.approx(5.0)
    assert distances[pair[LEFT_SHOULDER, RIGHT_SHOULDER]] == pytest.approx(6.0)
    assert np.count_nonzero(distances) == 3  # every pair with an unseen joint is 0


# --- padding and the model ----------------------------------------------------------------------------


def _model(num_classes: int = 6, seed: int = 0) -> ActionLSTM:
    """A small model as training builds them: inputs standardised, here by made-up statistics."""
    torch.manual_seed(seed)
    num_features = PreprocessConfig().num_features
    model = ActionLSTM(ModelConfig(num_features=num_features, num_classes=num_classes, hidden=16, standardize=True))
    model.set_feature_statistics(0.1 * torch.randn(num_features), torch.rand(num_features) + 0.2)
    return model.eval()


def test_standardize_subtracts_the_mean_and_divides_by_the_spread_except_of_constant_features():
    model = ActionLSTM(ModelConfig(num_features=3, num_classes=2, hidden=4, standardize=True))
    model.set_feature_statistics(torch.tensor([1.0, -2.0, 5.0]), torch.tensor([2.0, 0.5, 0.0]))
    x = torch.tensor([[[3.0, -1.0, 7.0]]])
    assert model.standardize(x).tolist() == [[[1.0, 2.0, 2.0]]]  # (3-1)/2, (-1+2)/0.5, (7-5)/1: a never-varying feature keeps its scale
    old = ActionLSTM(ModelConfig(num_features=3, num_classes=2, hidden=4))
    assert torch.equal(old.standardize(x), x) and "feature_mean" not in old.state_dict()


def test_training_statistics_standardise_the_training_windows(tmp_path):
    """`feature_statistics` over one draw of training windows brings another draw to about zero mean
    and unit spread, feature by feature (those that vary at all)."""
    path = tmp_path / "d.pkl"
    write_sample_pickle(path, num_classes=3, clips_per_class=8, frames=(40, 80), seed=0)
    dataset, pre, aug = load_dataset(path, use_cache=False), PreprocessConfig(), AugmentConfig()
    indices = np.arange(len(dataset))
    mean, std = epochs.feature_statistics(dataset, indices, pre, aug, seed=0, windows=512)
    model = ActionLSTM(ModelConfig(num_features=pre.num_features, num_classes=3, hidden=4, standardize=True))
    model.set_feature_statistics(mean, std)
    rng = np.random.default_rng(7)
    x, lengths, _ = epochs.make_batch(dataset, rng.choice(indices, 512), pre, aug, SpatialAugment(aug, rng), rng)
    frames = model.standardize(x)[torch.arange(x.shape[1])[None, :] < lengths[:, None]]
    varied = std > 1e-3
    assert varied.sum() > 0.9 * pre.num_features
    assert frames[:, varied].mean(0).abs().max() < 0.25
    spread = frames[:, varied].std(0)
    assert 0.75 < spread.min() and spread.max() < 1.3


def test_garbage_in_the_padded_frames_does_not_change_the_logits():
    model = _model()
    lengths = torch.tensor([7, 30, 19])
    x = torch.randn(3, 30, model.cfg.num_features)
    padded = x.clone()
    for i, n in enumerate(lengths.tolist()):
        padded[i, n:] = 1e3 * torch.randn(30 - n, model.cfg.num_features)
    with torch.inference_mode():
        assert torch.equal(model(padded, lengths), model(x, lengths))


def test_a_window_gives_the_same_logits_padded_in_a_batch_as_alone_unpadded():
    model = _model()
    x = torch.randn(3, 30, model.cfg.num_features)
    lengths = torch.tensor([7, 30, 19])
    with torch.inference_mode():
        batched = model(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = model(x[i : i + 1, :n], torch.tensor([n]))  # no padding: the unpacked path
            torch.testing.assert_close(batched[i : i + 1], alone, rtol=1e-5, atol=1e-5)


def test_members_predict_their_mean_probability_on_every_path():
    """Two members: softmax of the model's logits is the mean of each member's softmax, in training's
    per-member output, the mixed-batch inference path and the exported graph's `unpacked`."""
    torch.manual_seed(0)
    num_features = PreprocessConfig().num_features
    model = ActionLSTM(ModelConfig(num_features=num_features, num_classes=5, hidden=16, standardize=True, members=2)).eval()
    model.set_feature_statistics(torch.randn(num_features), torch.rand(num_features) + 0.5)
    x, lengths = torch.randn(3, 30, num_features), torch.tensor([30, 7, 19])
    with torch.inference_mode():
        each = model(x, lengths, each_member=True)
        assert each.shape == (2, 3, 5) and not torch.allclose(each[0], each[1])
        mean = torch.softmax(each, -1).mean(0)
        torch.testing.assert_close(torch.softmax(model(x, lengths), -1), mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(torch.softmax(model.unpacked(x, lengths), -1), mean, rtol=1e-5, atol=1e-6)
        for k, member in enumerate(model.members):
            torch.testing.assert_close(each[k], member(model.standardize(x), lengths))


def test_reverse_within_reverses_each_sequence_up_to_its_length_only():
    x = torch.arange(10, dtype=torch.float32).reshape(2, 5, 1)
    out = reverse_within(x, torch.tensor([3, 5]))
    assert out[..., 0].tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (1, True), (2, False), (2, True)])
def test_inference_on_a_mixed_batch_computes_what_training_packs(layers, bidirectional):
    """`directions_apart` (inference) against packed sequences (training), on the same weights."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        num_features=PreprocessConfig().num_features, num_classes=6, hidden=16, layers=layers, dropout=0.0, bidirectional=bidirectional
    )
    model = ActionLSTM(cfg)
    x = torch.randn(4, 30, model.cfg.num_features)
    lengths = torch.tensor([30, 7, 1, 19])
    x[1, 7:] = 1e3  # garbage past a window's end
    x[3, 19:] = float("nan")  # even NaN: padding never reaches a valid frame or the pooling
    with torch.no_grad():
        packed = model.train()(x, lengths)
        apart = model.eval()(x, lengths)
    torch.testing.assert_close(apart, packed, rtol=1e-5, atol=1e-5)


def test_a_short_window_predicts_the_same_at_any_model_window_length():
    """30 frames through a 120-frame model (90 padded) and through a 30-frame one (none padded)."""
    model = _model()
    windows = [_moving_person(30), _moving_person(12, seed=1)]
    long = predict_windows(model, PreprocessConfig(window=120), windows, CPU)
    exact = predict_windows(model, PreprocessConfig(window=30), windows, CPU)
    np.testing.assert_allclose(long, exact, rtol=1e-5, atol=1e-6)


# --- the live action runtime ------------------------------------------------------------------------

CLASSES = [f"action{i}" for i in range(6)]


def _classifier(seed: int = 0) -> Classifier:
    pre = PreprocessConfig(window=30, min_frames=5)  # min_seconds: (5 - 1) / 25 = 0.16 s
    return Classifier(_model(len(CLASSES), seed), list(CLASSES), pre)


def _probs(labels: list) -> np.ndarray:
    """A runtime's Top-k list (k = all classes) back into a probability vector in class order."""
    by_name = {item.label: item.prob for item in labels}
    return np.array([by_name[name] for name in CLASSES])


def _frame(buffers: TrackBuffers, t: int, track_ids: list[int], people: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    keypoints = np.stack([people[i][0][t] for i in track_ids]) if track_ids else np.zeros((0, NUM_JOINTS, 2))
    scores = np.stack([people[i][1][t] for i in track_ids]) if track_ids else np.zeros((0, NUM_JOINTS))
    buffers.update(t / 25.0, np.array(track_ids, np.int64), keypoints, scores)


def test_runtime_smooths_probabilities_with_an_exponential_moving_average():
    clf = _classifier()
    people = {1: _moving_person(12)}
    buffers = TrackBuffers(clf.preprocess, 25.0, (480, 640))
    runtime = ActionRuntime(clf, CPU, smoothing=0.75, top_k=len(CLASSES))
    expected = None
    for t in range(12):
        _frame(buffers, t, [1], people)
        out = runtime.update(buffers, {1})
        if t < 4:  # the buffer spans less than the 0.16 s it needs
            assert out == {}
            continue
        raw = predict_windows(clf.model, clf.preprocess, [buffers[1].window(clf.preprocess)], CPU)[0]
        expected = raw if expected is None else 0.75 * expected + 0.25 * raw
        np.testing.assert_allclose(_probs(out[1]), expected, rtol=1e-6, atol=1e-7)
    assert not np.allclose(expected, raw, atol=1e-5)  # the average really differs from the newest output


def test_runtime_classifies_only_every_stride_frames_and_holds_labels_in_between():
    clf = _classifier()
    people = {1: _moving_person(10)}
    buffers = TrackBuffers(clf.preprocess, 25.0, (480, 640))
    runtime = ActionRuntime(clf, CPU, stride=3, smoothing=0.0, min_seconds=0.0, top_k=len(CLASSES))
    held = None
    for t in range(10):
        _frame(buffers, t, [1], people)
        got = _probs(runtime.update(buffers, {1})[1])
        raw = predict_windows(clf.model, clf.preprocess, [buffers[1].window(clf.preprocess)], CPU)[0]
        if t % 3 == 0:
            np.testing.assert_allclose(got, raw, rtol=1e-6, atol=1e-7)
            assert held is None or not np.allclose(got, held, atol=1e-6)  # new input, new output
            held = got
        else:
            assert np.array_equal(got, held)
            assert not np.allclose(got, raw, atol=1e-6)  # the model would have said something else


def test_a_person_out_of_sight_keeps_labels_until_their_buffer_is_freed_then_starts_afresh():
    clf = _classifier()
    people = {1: _moving_person(40), 2: _moving_person(40, seed=2)}
    buffers = TrackBuffers(clf.preprocess, 25.0, (480, 640), forget_seconds=0.2)
    runtime = ActionRuntime(clf, CPU, smoothing=0.5, top_k=len(CLASSES))
    for t in range(8):
        _frame(buffers, t, [1, 2], people)
        out = runtime.update(buffers, {1, 2})
    last = _probs(out[2])
    # Person 2 is gone from frame 8: kept while last seen at most 0.2 s ago (frames 8..12), freed at 13.
    for t in range(8, 14):
        _frame(buffers, t, [1], people)
        out = runtime.update(buffers, {1})
        if t <= 12:
            assert 2 in buffers and np.array_equal(_probs(out[2]), last)
        else:
            assert 2 not in buffers and 2 not in out and 1 in out
    # Back under the same id: a new buffer, no labels until it spans 0.16 s, then no old average.
    for t in range(14, 19):
        _frame(buffers, t, [1, 2], people)
        out = runtime.update(buffers, {1, 2})
        assert (2 in out) == (t == 18)
    raw = predict_windows(clf.model, clf.preprocess, [buffers[2].window(clf.preprocess)], CPU)[0]
    np.testing.assert_allclose(_probs(out[2]), raw, rtol=1e-6, atol=1e-7)


# --- group hold-outs ------------------------------------------------------------------------------


def _random_videos(rng: np.random.Generator) -> tuple[list[Video], list[str]]:
    """2-6 classes, each performed by a random subset of 1-8 actors of one pool, 1-3 takes each."""
    classes = [f"class{c}" for c in range(int(rng.integers(2, 7)))]
    videos = []
    for label, name in enumerate(classes):
        for actor in rng.choice(10, size=int(rng.integers(1, 9)), replace=False):
            for take in range(int(rng.integers(1, 4))):
                path = f"{name}/actor{actor}_take{take}.mp4"
                videos.append(Video(Path(path), label, path))
    return videos, classes


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_group_split_never_puts_a_group_on_both_sides(fraction):
    for seed in range(60):
        videos, classes = _random_videos(np.random.default_rng(seed))
        flags, warnings = assign_splits(videos, classes, test=None, group=r"actor(\d+)_", test_fraction=fraction)
        groups = [v.name.split("/")[1].split("_")[0] for v in videos]
        held = {g for g, f in zip(groups, flags) if f}
        trained = {g for g, f in zip(groups, flags) if not f}
        assert not held & trained, seed
        for label, name in enumerate(classes):
            members = {g for g, v in zip(groups, videos) if v.label == label}
            count = len(members & held)
            if len(members) >= 2:  # each class has at least its share of groups held out
                assert count >= max(1, round(len(members) * fraction)), (seed, name)
            all_held = f"class {name}: all its groups are held out elsewhere: it has no training video"
            none_held = f"class {name}: too few videos (or groups) for a test split: all go to train1"
            assert (all_held in warnings) == (count == len(members)), (seed, name)
            assert (none_held in warnings) == (count == 0), (seed, name)


def _named_dataset(names: list[str]) -> SkeletonDataset:
    """A data set of one-frame clips that only differ by name (all `holdout_by_group` reads)."""
    n = len(names)
    return SkeletonDataset(
        frame_dirs=np.array(names),
        labels=np.zeros(n, np.int64),
        offsets=np.arange(n + 1, dtype=np.int64),
        keypoint=np.zeros((n, NUM_JOINTS, 2), np.float32),
        score=np.zeros((n, NUM_JOINTS), np.float32),
        img_shapes=np.zeros((n, 2), np.int64),
        fps=np.full(n, np.nan),
        splits={},
    )


def test_validation_hold_out_keeps_each_ucf101_group_on_one_side():
    for seed in range(40):
        rng = np.random.default_rng(seed)
        names = [
            f"v_Class{c}_g{int(g):02d}_c{k:02d}" for c in range(4) for k, g in enumerate(rng.integers(1, 26, int(rng.integers(1, 15))))
        ]
        names = sorted(set(names))
        dataset = _named_dataset(names)
        indices = rng.permutation(len(names))[: max(1, len(names) * 3 // 4)]
        fit, val = holdout_by_group(dataset, indices, fraction=0.1, seed=seed)
        assert sorted(np.concatenate([fit, val]).tolist()) == sorted(indices.tolist())
        fit_groups = {group_of(names[i], UCF101_GROUP) for i in fit}
        val_groups = {group_of(names[i], UCF101_GROUP) for i in val}
        assert not fit_groups & val_groups, seed
        groups = len(fit_groups | val_groups)
        assert len(val_groups) == (max(1, round(groups * 0.1)) if groups > 1 else 0), seed


# --- resumed training -------------------------------------------------------------------------------


class _Interrupt(Exception):
    """Stands for Ctrl-C (the CLI's real one is tested in test_training.py)."""


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    """Two epochs, a stop right after the second one's resume state is written, then `resume=True` to
    four: the same weights, optimiser steps, augmentations and history as four epochs in one go."""
    data = tmp_path / "tiny.pkl"
    write_sample_pickle(data, num_classes=3, clips_per_class=6, frames=(20, 40), groups=3, seed=4)
    dataset = load_dataset(data, use_cache=False)
    indices = dataset.split_indices("train1")
    names = ["a", "b", "c"]
    pre = PreprocessConfig(window=24, min_frames=8)
    # A validation part (min_val_clips=1), so choosing the best epoch is resumed too.
    cfg = TrainConfig(epochs=4, batch_size=8, min_epoch_windows=16, min_val_clips=1, seed=3)

    straight = train(dataset, indices, names, tmp_path / "straight.pth", CPU, cfg, pre=pre)

    real_save = training.atomic_torch_save
    saves: list[int] = []

    def save_then_stop_after_epoch_two(obj: dict, path: Path) -> None:
        real_save(obj, path)
        saves.append(obj["epoch"])
        if obj["epoch"] == 2:
            raise _Interrupt

    out = tmp_path / "resumed.pth"
    with monkeypatch.context() as patch, pytest.raises(_Interrupt):
        patch.setattr(training, "atomic_torch_save", save_then_stop_after_epoch_two)
        train(dataset, indices, names, out, CPU, cfg, pre=pre)
    assert saves == [1, 2] and resume_path(out).exists() and not out.exists()

    resumed = train(dataset, indices, names, out, CPU, cfg, pre=pre, resume=True)

    a = torch.load(tmp_path / "straight.pth", weights_only=True)["state_dict"]
    b = torch.load(out, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    drop_time = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert drop_time(resumed["history"]) == drop_time(straight["history"])
    assert resumed["best_epoch"] == straight["best_epoch"] and resumed["val_clips"] == straight["val_clips"] > 0


# --- metrics ------------------------------------------------------------------------------------------

# Six classes, so a top-5 miss is possible; classes 3 and 4 have no clip.
PROBS = np.array(
    [
        [0.50, 0.20, 0.10, 0.09, 0.07, 0.04],  # label 0: top-1 hit
        [0.40, 0.30, 0.10, 0.09, 0.07, 0.04],  # label 1: predicted 0, second place
        [0.30, 0.25, 0.20, 0.15, 0.07, 0.03],  # label 5: predicted 0, sixth place: a top-5 miss
        [0.05, 0.60, 0.12, 0.11, 0.08, 0.04],  # label 1: top-1 hit
        [0.01, 0.02, 0.03, 0.04, 0.10, 0.80],  # label 2: predicted 5, fourth place
        [0.02, 0.03, 0.05, 0.10, 0.20, 0.60],  # label 5: top-1 hit
        [0.70, 0.10, 0.08, 0.06, 0.04, 0.02],  # label 0: top-1 hit
    ]
)
LABELS = np.array([0, 1, 5, 1, 2, 5, 0])


def test_metrics_equal_hand_counts():
    metrics = classification_metrics(PROBS, LABELS)
    assert metrics["top1"] == pytest.approx(4 / 7)
    assert metrics["top5"] == pytest.approx(6 / 7)
    # Per present class: 0 -> 2/2, 1 -> 1/2, 2 -> 0/1, 5 -> 1/2; absent classes 3 and 4 don't count.
    assert metrics["mean_class_acc"] == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    assert metrics["n"] == 7


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    matrix = confusion_matrix(PROBS.argmax(-1), LABELS, 6)
    expected = np.zeros((6, 6), np.int64)
    expected[0, 0] = 2
    expected[1, 0] = expected[1, 1] = 1
    expected[2, 5] = 1
    expected[5, 0] = expected[5, 5] = 1
    assert np.array_equal(matrix, expected)


def test_per_class_csv_equals_hand_counts(tmp_path):
    names = [f"c{i}" for i in range(6)]
    path = tmp_path / "per_class.csv"
    write_per_class_csv(confusion_matrix(PROBS.argmax(-1), LABELS, 6), PROBS, LABELS, names, path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["label", "class", "clips", "top1", "top5", "most_confused_with"],
        ["0", "c0", "2", "1.0000", "1.0000", ""],
        ["1", "c1", "2", "0.5000", "1.0000", "c0"],
        ["2", "c2", "1", "0.0000", "1.0000", "c5"],
        ["3", "c3", "0", "", "", ""],
        ["4", "c4", "0", "", "", ""],
        ["5", "c5", "2", "0.5000", "0.5000", "c0"],
    ]
