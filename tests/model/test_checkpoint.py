"""Checkpoint and resume files that are not what they should be: one line saying what is wrong, from
`load_checkpoint` and from the real CLI alike; never torch's advice to turn `weights_only` off, never
a setting silently replaced by a default. Also the optimiser's weight-decay groups."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from actionlstm.checkpoint import load_checkpoint, save_checkpoint
from actionlstm.dataset import load_dataset
from actionlstm.errors import UserError
from actionlstm.inference import predict_windows
from actionlstm.model import ActionLSTM, ModelConfig
from actionlstm.preprocess import PreprocessConfig
from actionlstm.resume import resume_path
from actionlstm.synthetic import TEMPLATE, write_sample_pickle
from actionlstm.train import TrainConfig, param_groups, train
from tests.helpers import assert_user_error, run_cli

CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "three.pkl"
    write_sample_pickle(path, num_classes=3, clips_per_class=6, frames=(30, 40), seed=0)
    return path


@pytest.fixture(scope="module")
def payload(tmp_path_factory) -> dict:
    """A good checkpoint's contents (untrained: only the file matters here)."""
    path = tmp_path_factory.mktemp("ckpt") / "good.pth"
    model = ActionLSTM(ModelConfig(num_features=PreprocessConfig().num_features, num_classes=3, hidden=8, layers=1))
    save_checkpoint(path, model, CLASSES, PreprocessConfig(), {})
    return torch.load(path, weights_only=True)


class RunsACommand:
    """What a malicious checkpoint holds: unpickling it would call os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _without(values: dict, key: str) -> dict:
    return {k: v for k, v in values.items() if k != key}


def _damaged(payload: dict, tmp_path: Path) -> dict[str, tuple[object, str]]:
    """name -> (what to write, the message after the path)."""
    marker = tmp_path / "ran"
    return {
        "python-object": (
            {**payload, "meta": {"hook": RunsACommand(marker)}},
            f" is not an ActionLSTM checkpoint: it holds Python objects that ActionLSTM will not run "
            f"({os.system.__module__}.system); only tensors and plain data are read",
        ),
        "no-state-dict": (_without(payload, "state_dict"), " is a damaged ActionLSTM checkpoint (missing 'state_dict')"),
        "no-fps": (
            {**payload, "preprocess": _without(payload["preprocess"], "fps")},
            " is a damaged ActionLSTM checkpoint (missing preprocessing setting 'fps')",
        ),
        "no-hidden": (
            {**payload, "model_config": _without(payload["model_config"], "hidden")},
            " is a damaged ActionLSTM checkpoint (missing model setting 'hidden')",
        ),
        "no-weight": (
            {**payload, "state_dict": _without(payload["state_dict"], "members.0.head.1.bias")},
            " is a damaged ActionLSTM checkpoint (missing weights 'members.0.head.1.bias')",
        ),
        "newer-preprocess": (
            {**payload, "preprocess": {**payload["preprocess"], "joint_set": "halpe26"}},
            " has a preprocessing setting this ActionLSTM does not know: 'joint_set' (written by a newer version?)",
        ),
        "newer-model": (
            {**payload, "model_config": {**payload["model_config"], "attention": True}},
            " has a model setting this ActionLSTM does not know: 'attention' (written by a newer version?)",
        ),
        "bad-setting": (
            {**payload, "preprocess": {**payload["preprocess"], "window": 0}},
            " is a damaged ActionLSTM checkpoint (preprocessing settings: window 0, fps 25.0, min_frames 25 are out of range)",
        ),
    }


def _write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / f"{name}.pth"
    torch.save(content, path)
    return path


def _truncated(tmp_path: Path, payload: dict) -> Path:
    path = _write(tmp_path, "whole", payload)
    cut = tmp_path / "truncated.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return cut


CASES = ["python-object", "no-state-dict", "no-fps", "no-hidden", "no-weight", "newer-preprocess", "newer-model", "bad-setting"]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_checkpoint_is_one_line_naming_the_problem(case, payload, tmp_path):
    content, message = _damaged(payload, tmp_path)[case]
    path = _write(tmp_path, case, content)
    with pytest.raises(UserError) as raised:
        load_checkpoint(path)
    assert str(raised.value) == f"{path}{message}"
    assert not (tmp_path / "ran").exists()


def test_a_truncated_checkpoint_says_so(payload, tmp_path):
    path = _truncated(tmp_path, payload)
    with pytest.raises(UserError) as raised:
        load_checkpoint(path)
    assert str(raised.value) == f"{path} is not a readable checkpoint: the file is damaged, cut short or not a PyTorch file"


@pytest.mark.parametrize("case", ["python-object", "truncated", "no-fps", "newer-preprocess"])
def test_the_cli_prints_the_same_line(case, payload, data, tmp_path, single_thread):
    if case == "truncated":
        path, message = _truncated(tmp_path, payload), " is not a readable checkpoint: the file is damaged, cut short or not a PyTorch file"
    else:
        content, message = _damaged(payload, tmp_path)[case]
        path = _write(tmp_path, case, content)
    proc = run_cli("predict", "--data", data, "--checkpoint", path, "--idx", "0", "--device", "cpu", cwd=tmp_path)
    assert assert_user_error(proc) == f"error: {path}{message}"
    assert "weights_only" not in proc.stderr
    assert not (tmp_path / "ran").exists()


def test_a_checkpoint_from_before_score_feature_keeps_raw_scores(payload, tmp_path):
    """Checkpoints written before `score_feature` existed were trained on raw scores and keep them."""
    path = _write(tmp_path, "old", {**payload, "preprocess": _without(payload["preprocess"], "score_feature")})
    assert load_checkpoint(path).preprocess.score_feature == "raw"
    assert load_checkpoint(_write(tmp_path, "new", payload)).preprocess == PreprocessConfig()


def test_a_resume_state_from_an_earlier_version_is_refused(data, tmp_path):
    """Resume states written before the weight-decay groups hold an optimiser of one group."""
    out = tmp_path / "run.pth"
    torch.save({"model": {}, "optimizer": {}, "epoch": 1}, resume_path(out))
    dataset = load_dataset(data, use_cache=False)
    with pytest.raises(UserError) as raised:
        train(dataset, dataset.split_indices("train1"), CLASSES, out, torch.device("cpu"), TrainConfig(epochs=1), resume=True)
    assert str(raised.value) == f"{resume_path(out)} was written by an earlier ActionLSTM; start afresh without --resume"


def test_weight_decay_spares_biases_and_norm_gains():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.LSTM(8, 8))
    names = {id(p): name for name, p in model.named_parameters()}
    decay, spared = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and spared["weight_decay"] == 0.0
    assert sorted(names[id(p)] for p in decay["params"]) == ["0.weight", "2.weight_hh_l0", "2.weight_ih_l0"]
    assert sorted(names[id(p)] for p in spared["params"]) == ["0.bias", "1.bias", "1.weight", "2.bias_hh_l0", "2.bias_ih_l0"]
    assert len(decay["params"]) + len(spared["params"]) == len(list(model.parameters()))


def _moving_skeleton(frames: int) -> np.ndarray:
    """Pixel keypoints [frames, 17, 2] of the sample skeleton, every joint swaying on its own phase."""
    t = np.arange(frames)[:, None, None]
    return ((TEMPLATE[None] + 0.1 * np.sin(0.3 * t + np.arange(34).reshape(1, 17, 2))) * 200 + np.array([320.0, 240.0])).astype(np.float32)


def test_a_checkpoint_from_before_the_short_clip_features_predicts_as_it_did(tmp_path):
    """A checkpoint written before distances, slow motion, standardised inputs and members existed loads with all off and gives the
    probabilities the code of that time gave (computed then, with these weights)."""
    model = ActionLSTM(ModelConfig(num_features=17 * 7, num_classes=3, hidden=8, layers=1))
    with torch.no_grad():
        for k, p in enumerate(model.parameters()):
            p.copy_(0.3 * torch.sin(torch.arange(p.numel(), dtype=torch.float32) * 0.37 + k).reshape(p.shape))
    path = tmp_path / "old.pth"
    save_checkpoint(path, model, CLASSES, PreprocessConfig(), {})
    payload = torch.load(path, weights_only=True)
    for key in ("distances", "slow_motion"):
        payload["preprocess"] = _without(payload["preprocess"], key)
    payload["model_config"] = {k: v for k, v in payload["model_config"].items() if k not in ("standardize", "members")}
    payload["state_dict"] = {k.removeprefix("members.0."): v for k, v in payload["state_dict"].items()}  # weights named as then
    clf = load_checkpoint(_write(tmp_path, "before", payload))
    assert (clf.preprocess.distances, clf.preprocess.slow_motion, clf.model.cfg.standardize, clf.model.cfg.members) == (False, 0, False, 1)
    assert clf.preprocess.num_features == 17 * 7

    keypoint = _moving_skeleton(40)
    score = np.full((40, 17), 0.9, np.float32)
    score[:, 1:5] = 0.0  # no eyes or ears, as in JHMDB
    torch.set_num_threads(1)
    probs = predict_windows(clf.model, clf.preprocess, [(keypoint, score), (keypoint[:30], score[:30])], torch.device("cpu"))
    then = [[0.594281, 0.229439, 0.17628], [0.594179, 0.22883, 0.176991]]
    np.testing.assert_allclose(probs, then, atol=2e-6)


def test_a_checkpoint_of_the_former_recipe_keeps_its_two_layers_and_three_members(tmp_path):
    """The recipe trained three members of two layers before five of one: such a checkpoint loads as what
    it is, not as today's default, and predicts what the model it was saved from predicts."""
    pre = PreprocessConfig()
    torch.manual_seed(0)
    model = ActionLSTM(ModelConfig(num_features=pre.num_features, num_classes=3, hidden=8, layers=2, members=3, standardize=True)).eval()
    model.set_feature_statistics(0.1 * torch.randn(pre.num_features), torch.rand(pre.num_features) + 0.5)
    path = tmp_path / "former.pth"
    save_checkpoint(path, model, CLASSES, pre, {})
    clf = load_checkpoint(path)
    assert (clf.model.cfg.layers, clf.model.cfg.members) == (2, 3)

    keypoint, score = _moving_skeleton(40), np.full((40, 17), 0.9, np.float32)
    windows = [(keypoint, score), (keypoint[:25], score[:25])]
    want = predict_windows(model, pre, windows, torch.device("cpu"))
    np.testing.assert_array_equal(predict_windows(clf.model, clf.preprocess, windows, torch.device("cpu")), want)
