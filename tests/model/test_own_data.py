"""Fast unit tests of the own-action pieces on the model side: group-aware splits, clip names,
per-clip frame rates, small-data epochs, live-like training crops and fine-tuning. (Joining tracks
into persons, on the extraction side, is in tests/pipeline/test_persons.py.)"""

from pathlib import Path

import numpy as np
import pytest
import torch

from actionlstm.augment import AugmentConfig, sample_training_window
from actionlstm.checkpoint import load_checkpoint, save_checkpoint
from actionlstm.dataset import parse_annotations
from actionlstm.epochs import epoch_order, epoch_windows
from actionlstm.errors import UserError
from actionlstm.model import OUTPUT_LAYER, ActionLSTM, ModelConfig
from actionlstm.pickle_io import dump_pickle_like_mmcv
from actionlstm.preprocess import PreprocessConfig
from actionlstm.train import TrainConfig, initial_model
from actionlstm.videoset import Video, assign_splits, find_videos, frame_dirs
from tests.helpers import run_cli


def _videos(names_by_class: dict[str, list[str]]) -> tuple[list[Video], list[str]]:
    classes = sorted(names_by_class)
    videos = [Video(Path(f"{c}/{n}"), label, f"{c}/{n}") for label, c in enumerate(classes) for n in names_by_class[c]]
    return videos, classes


def test_group_split_never_puts_a_group_on_both_sides_and_holds_out_the_same_actor_everywhere():
    names = {c: [f"person{p}_take{t}.mp4" for p in range(1, 6) for t in range(3)] for c in ("box", "wave", "walk")}
    videos, classes = _videos(names)
    flags, warnings = assign_splits(videos, classes, test=None, group=r"person(\d+)", test_fraction=0.2)
    test_actors = {v.name.split("/")[1][:7] for v, f in zip(videos, flags) if f}
    train_actors = {v.name.split("/")[1][:7] for v, f in zip(videos, flags) if not f}
    assert len(test_actors) == 1 and not test_actors & train_actors  # 20% of 5 actors: one, in every class
    assert sum(flags) == 9 and not warnings
    again, _ = assign_splits(videos, classes, test=None, group=r"person(\d+)", test_fraction=0.2)
    assert again == flags  # deterministic


def test_split_by_regex_and_too_few_videos_are_reported():
    videos, classes = _videos({"fall": ["S1_Fall_01.mp4", "S2_Fall_02.mp4"], "adl": ["S1_ADL_01.mp4"]})
    flags, _ = assign_splits(videos, classes, test="S2_", group=None, test_fraction=0.2)
    assert flags == [False, False, True]  # classes sort: adl, fall
    flags, warnings = assign_splits(videos, classes, test=None, group=r"S(\d+)_", test_fraction=0.5)
    assert sorted(flags[1:]) == [False, True]  # fall: one of its two subjects held out
    assert flags[0] == flags[1]  # S1 is held out everywhere or nowhere
    assert any(w.startswith("class adl") for w in warnings) and not any(w.startswith("class fall") for w in warnings)
    with pytest.raises(UserError, match="--test-fraction"):
        assign_splits(videos, classes, test=None, group=None, test_fraction=1.0)


def test_clip_names_are_unique():
    videos, classes = _videos({"a": ["x.mp4", "y.mp4"], "b": ["x.avi"]})
    assert frame_dirs(videos, classes) == ["a_x", "a_y", "b_x"]
    videos, classes = _videos({"a": ["x.mp4", "z.mp4"], "b": ["y.avi"]})
    assert frame_dirs(videos, classes) == ["x", "z", "y"]


def test_find_videos_reads_class_folders(tmp_path):
    for name in ("wave/1.mp4", "wave/sub/2.mp4", "wave/.hidden.mp4", "box/3.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    found = find_videos(tmp_path)
    assert found.class_names == ["box", "wave"]
    assert [(v.name, v.label) for v in found.videos] == [("box/3.mp4", 0), ("wave/1.mp4", 1), ("wave/sub/2.mp4", 1)]
    assert found.problems == ["empty/: no videos in this class folder (class left out)"]


def _annotation(frames: int, fps: float | None) -> dict:
    keypoint = np.zeros((1, frames, 17, 2), np.float16)
    keypoint[0, :, :, 0] = np.arange(frames)[:, None]  # x counts frames: resampling is easy to read
    ann = {
        "frame_dir": f"clip{frames}",
        "label": 0,
        "img_shape": (480, 640),
        "original_shape": (480, 640),
        "total_frames": frames,
        "keypoint": keypoint,
        "keypoint_score": np.ones((1, frames, 17), np.float16),
    }
    if fps is not None:
        ann["fps"] = fps
    return ann


def test_clips_are_resampled_from_their_own_frame_rate(tmp_path):
    path = tmp_path / "rates.pkl"
    dump_pickle_like_mmcv({"split": {"train1": ["clip51", "clip26"]}, "annotations": [_annotation(51, 50.0), _annotation(26, None)]}, path)
    from actionlstm.dataset import load_dataset

    dataset = load_dataset(path, use_cache=False)
    assert dataset.fps[0] == 50.0 and np.isnan(dataset.fps[1])
    keypoint, _ = dataset.clip_at(0, PreprocessConfig(fps=25.0))  # 50 fps -> 25 fps: every other frame, ending at the newest
    assert keypoint[:, 0, 0].tolist() == list(range(0, 51, 2))
    keypoint, _ = dataset.clip_at(1, PreprocessConfig(fps=25.0))  # no rate recorded: taken as the training rate, unchanged
    assert keypoint[:, 0, 0].tolist() == list(range(26))
    bad = _annotation(10, -3.0)
    with pytest.raises(UserError, match="fps"):
        parse_annotations({"split": {}, "annotations": [bad]})


def test_small_data_epochs_repeat_clips_and_draw_every_class_equally():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 10 + [1] * 3 + [2] * 7)
    indices = np.arange(20)
    order = epoch_order(indices, labels, 60, rng)
    assert len(order) == 60
    assert np.bincount(labels[order]).tolist() == [20, 20, 20]
    for c in range(3):  # within a class, whole shuffled passes: no clip drawn twice before all were drawn once
        drawn = np.bincount(order[labels[order] == c], minlength=20)[labels == c]
        assert drawn.max() - drawn.min() <= 1
    assert len(epoch_order(np.arange(100), np.zeros(100, int), 64, rng)) == 100  # a large set: one per clip


def test_small_data_epochs_hold_a_budget_of_frames(tmp_path):
    path = tmp_path / "lengths.pkl"
    clips = [_annotation(300, 50.0), _annotation(60, None), _annotation(30, 25.0)]  # 150, 60 and 30 frames at 25 fps
    dump_pickle_like_mmcv({"split": {}, "annotations": clips}, path)
    from actionlstm.dataset import load_dataset

    dataset, pre = load_dataset(path, use_cache=False), PreprocessConfig(fps=25.0, window=120)
    cfg = TrainConfig(min_epoch_windows=1024, max_epoch_frames=7000)
    # windows of 120 (capped), 60 and 30 frames: mean 70, so 7000 frames are 100 windows
    assert epoch_windows(dataset, np.arange(3), pre, cfg) == 100
    assert epoch_windows(dataset, np.array([2]), pre, cfg) == 234  # 30-frame windows: ceil(7000 / 30)
    assert epoch_windows(dataset, np.array([2]), pre, TrainConfig(min_epoch_windows=64, max_epoch_frames=7000)) == 64
    assert epoch_windows(dataset, np.arange(3), pre, TrainConfig(min_epoch_windows=1024, max_epoch_frames=1)) == 3  # every clip once


def test_live_like_crops_start_at_the_first_frame():
    pre = PreprocessConfig()
    keypoint = np.zeros((100, 17, 2), np.float32)
    keypoint[:, :, 0] = np.arange(100)[:, None]
    score = np.ones((100, 17), np.float32)
    aug = AugmentConfig(speed_range=(1.0, 1.0), short_crop_prob=1.0, prefix_prob=1.0)
    rng = np.random.default_rng(1)
    for _ in range(20):
        window, _ = sample_training_window(keypoint, score, 25.0, pre, aug, rng)
        assert window[0, 0, 0] == 0 and pre.min_frames <= len(window) <= 100
        assert np.all(np.diff(window[:, 0, 0]) == 1)


def test_fine_tuning_keeps_the_body_and_replaces_the_output_layer_for_new_classes():
    pre = PreprocessConfig(window=60)
    start = ActionLSTM(ModelConfig(num_features=pre.num_features, num_classes=5, hidden=32, standardize=True, members=2))
    start.set_feature_statistics(torch.rand(pre.num_features), torch.rand(pre.num_features) + 0.5)
    from actionlstm.checkpoint import Classifier

    init = Classifier(start, [f"c{i}" for i in range(5)], pre)
    same = initial_model(init.class_names, PreprocessConfig(), init)
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), start.state_dict().values()))
    new = initial_model(["wave", "box"], PreprocessConfig(), init)
    assert (new.cfg.hidden, new.cfg.num_classes, new.cfg.members, new.cfg.standardize) == (32, 2, 2, True)
    replaced = [key for key in new.state_dict() if key.endswith((".head.1.weight", ".head.1.bias"))]
    assert len(replaced) == 4  # each member's output layer
    for key, value in new.state_dict().items():
        if key in replaced:
            assert value.shape[0] == 2
        else:
            assert torch.equal(value, start.state_dict()[key]), key  # the LSTMs and the input statistics


def test_train_init_cli_fine_tunes_onto_a_new_class_list(sample_pickle, tmp_path, single_thread):
    pre = PreprocessConfig(window=60)
    start = ActionLSTM(ModelConfig(num_features=pre.num_features, num_classes=3, hidden=32))
    init_path = tmp_path / "start.pth"
    save_checkpoint(init_path, start, ["a", "b", "c"], pre, {})
    out = tmp_path / "tuned.pth"
    # --lr 0: nothing moves, so the result shows exactly where fine-tuning starts from.
    result = run_cli(
        "train", "--data", sample_pickle, "--init", init_path, "--epochs", "1", "--lr", "0", "--out", out, "--device", "cpu", "--no-cache"
    )
    assert result.returncode == 0, result.stderr
    assert "fresh output layer for 4 classes" in result.stderr
    tuned = load_checkpoint(out)
    assert tuned.preprocess == pre  # the starting model's preprocessing, not the defaults
    assert len(tuned.class_names) == 4 and tuned.model.cfg.hidden == 32
    for key, value in tuned.model.state_dict().items():
        if OUTPUT_LAYER not in key:
            assert torch.equal(value, start.state_dict()[key]), key


def test_crops_end_on_frames_that_show_the_person_and_prefixes_start_at_their_first_frame():
    pre = PreprocessConfig()
    keypoint = np.zeros((100, 17, 2), np.float32)
    keypoint[:, :, 0] = np.arange(100)[:, None]
    score = np.zeros((100, 17), np.float32)
    score[20:60] = 0.9  # the person walks in at frame 20 and out at frame 59
    rng = np.random.default_rng(2)
    full = AugmentConfig(speed_range=(1.0, 1.0), short_crop_prob=1.0, prefix_prob=0.0)
    for _ in range(30):
        window, window_score = sample_training_window(keypoint, score, 25.0, pre, full, rng)
        assert window_score[-1].max() > 0 and 20 <= window[-1, 0, 0] < 60
    prefix = AugmentConfig(speed_range=(1.0, 1.0), short_crop_prob=1.0, prefix_prob=1.0)
    for _ in range(10):
        window, _ = sample_training_window(keypoint, score, 25.0, pre, prefix, rng)
        assert window[0, 0, 0] == min(20, 100 - len(window))


def test_an_actor_held_out_in_one_class_is_held_out_in_all():
    """Classes with different actors: whichever actors are held out, none of them trains anywhere."""
    names = {"box": ["a", "b", "c"], "wave": ["b", "c", "d", "e"], "walk": list("abcdef")}
    videos, classes = _videos({c: [f"person_{actor}_1.mp4" for actor in actors] for c, actors in names.items()})
    for fraction in (0.2, 0.34, 0.5):
        flags, _ = assign_splits(videos, classes, test=None, group=r"person_(\w)_", test_fraction=fraction)
        test_actors = {v.name.split("_")[1] for v, f in zip(videos, flags) if f}
        train_actors = {v.name.split("_")[1] for v, f in zip(videos, flags) if not f}
        assert test_actors and not test_actors & train_actors, fraction
        for label in range(3):  # every class keeps at least one held-out and one training actor
            assert {f for v, f in zip(videos, flags) if v.label == label} == {True, False}, (fraction, label)
