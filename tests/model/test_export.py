"""Exported action models (ONNX Runtime, OpenVINO) give the .pth model's Top-5, in process and through `run`."""

import json

import numpy as np
import pytest
import torch

from actionlstm.checkpoint import load_checkpoint
from actionlstm.dataset import load_dataset
from actionlstm.device import resolve_device
from actionlstm.export import load_classifier
from actionlstm.inference import predict_clips
from tests.helpers import assert_user_error, run_cli


@pytest.fixture(scope="module")
def exported(trained_checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exported")
    onnx_file, openvino_folder = folder / "model.onnx", folder / "model_openvino"
    for fmt, out in (("onnx", onnx_file), ("openvino", openvino_folder)):
        proc = run_cli("export", trained_checkpoint, "--format", fmt, "--out", out)
        assert proc.returncode == 0, proc.stderr
    return {"onnx": onnx_file, "openvino": openvino_folder}


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_exported_model_gives_the_checkpoints_clip_probabilities(trained_checkpoint, sample_pickle, exported, fmt):
    cpu = resolve_device("cpu")
    original = load_checkpoint(trained_checkpoint)
    clf = load_classifier(exported[fmt], cpu)
    assert clf.class_names == original.class_names and clf.preprocess == original.preprocess
    assert clf.synthetic  # the record of its training data travels with it
    dataset = load_dataset(sample_pickle)
    indices = dataset.split_indices("test1")
    want = predict_clips(original.model, original.preprocess, dataset, indices, cpu)
    got = predict_clips(clf.model, clf.preprocess, dataset, indices, cpu)
    assert np.abs(got - want).max() < 1e-3
    assert np.array_equal(np.argsort(-got, 1)[:, :1], np.argsort(-want, 1)[:, :1])


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
@pytest.mark.parametrize("layers", [1, 2])
def test_an_exported_model_of_three_standardised_members_gives_their_mean_probability(tmp_path, fmt, layers):
    """Members over standardised inputs, of one layer as the recipe trains them or of two as the built-in
    falls model has, through each runtime, on a mixed batch of windows; the export leaves the model it
    was given in eval mode."""
    from actionlstm.checkpoint import Classifier
    from actionlstm.export import export_onnx, export_openvino
    from actionlstm.model import ActionLSTM, ModelConfig
    from actionlstm.preprocess import PreprocessConfig

    torch.manual_seed(0)
    pre = PreprocessConfig()
    model = ActionLSTM(
        ModelConfig(num_features=pre.num_features, num_classes=4, hidden=16, standardize=True, members=3, layers=layers)
    ).eval()
    model.set_feature_statistics(0.1 * torch.randn(pre.num_features), torch.rand(pre.num_features) + 0.5)
    clf = Classifier(model, list("abcd"), pre)
    out = export_onnx(clf, tmp_path / "m.onnx") if fmt == "onnx" else export_openvino(clf, tmp_path / "m_openvino")
    assert not model.training
    exported = load_classifier(out, torch.device("cpu"), fmt)
    x, lengths = 0.3 * torch.randn(3, pre.window, pre.num_features), torch.tensor([pre.window, 30, 61])
    with torch.inference_mode():
        want = torch.softmax(model(x, lengths), -1)
        got = torch.softmax(exported.model(x, lengths), -1)
    assert (got - want).abs().max() < 1e-4


def _top5_by_frame(path) -> dict:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {(r["frame"], p["id"]): p["top5"] for r in records for p in r["persons"] if p["top5"] is not None}


@pytest.mark.video
def test_run_with_an_exported_model_or_backend_labels_like_the_pth(trained_checkpoint, exported, short_video, tmp_path):
    runs = {
        "pth": ["--checkpoint", trained_checkpoint],
        "onnx file": ["--checkpoint", exported["onnx"]],
        "openvino backend": ["--checkpoint", trained_checkpoint, "--classifier-backend", "openvino"],
    }
    labels = {}
    for name, args in runs.items():
        out = tmp_path / f"{name.replace(' ', '_')}.jsonl"
        proc = run_cli("run", short_video, *args, "--jsonl", out, "--no-show", "--device", "cpu")
        assert proc.returncode == 0, proc.stderr
        labels[name] = _top5_by_frame(out)
    reference = labels.pop("pth")
    assert len(reference) > 20  # persons were labelled in many frames
    for name, found in labels.items():
        assert found.keys() == reference.keys(), name
        for key, top5 in found.items():
            assert [t["label"] for t in top5] == [t["label"] for t in reference[key]], (name, key)
            assert np.abs(np.subtract([t["prob"] for t in top5], [t["prob"] for t in reference[key]])).max() < 1e-3, (name, key)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's notes on its ONNX exporters
def test_export_refuses_to_replace_and_bad_exported_files_are_one_line_errors(trained_checkpoint, exported, tmp_path):
    assert_user_error(run_cli("export", trained_checkpoint, "--out", exported["onnx"]), "already exists", "--overwrite")
    assert_user_error(run_cli("export", exported["onnx"], "--out", tmp_path / "again.onnx"), "already an exported model")
    assert_user_error(run_cli("export", trained_checkpoint, "--out", tmp_path / "model.bin"), ".onnx file name")
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(exported["onnx"].read_bytes()[:500])
    assert_user_error(run_cli("evaluate", "--data", "x.pkl", "--checkpoint", damaged), "not a readable ONNX model")
    foreign = tmp_path / "foreign.onnx"  # a valid ONNX graph, but not one of ours
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.zeros(1, 3),), str(foreign), dynamo=False)
    assert_user_error(run_cli("run", "0", "--checkpoint", foreign), "not an action model exported by `actionlstm export`")
    assert_user_error(
        run_cli("run", "0", "--checkpoint", exported["onnx"], "--classifier-backend", "openvino"), "--classifier-backend onnx"
    )
    assert_user_error(
        run_cli("train", "--data", "x.pkl", "--init", exported["onnx"], "--out", tmp_path / "t.pth"), "fine-tuning starts from the .pth"
    )
