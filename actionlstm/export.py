"""Action models exported for ONNX Runtime and OpenVINO: self-contained files that `run` takes as `--checkpoint`.

An exported model carries what `run` needs besides its weights, the class names and preprocessing
settings (ONNX metadata, OpenVINO runtime info), so it is used exactly like the `.pth` it came from.
PyTorch's LSTM export cannot pack sequences, so the graph is the model's own inference path for
mixed-length batches (`ActionLSTM.unpacked`): each direction of each layer on its own, the
backward one over each window reversed within its length, so padding never reaches a valid frame.
"""

import hashlib
import importlib.util
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from actionlstm.atomic import atomic_path
from actionlstm.checkpoint import FORMAT, Classifier, load_checkpoint
from actionlstm.errors import UserError
from actionlstm.model import ActionLSTM, ModelConfig
from actionlstm.paths import cache_root, file_identity
from actionlstm.preprocess import PreprocessConfig

FORMATS = ("onnx", "openvino")
BACKENDS = ("auto", "torch", *FORMATS)
METADATA_KEY = "actionlstm"
OPENVINO_XML = "model.xml"
EXPORT_VERSION = 2  # part of the cache key: 2 keeps OpenVINO weights in float32


class _UnpackedLSTM(nn.Module):
    """The graph to export: `ActionLSTM` with every batch on its mixed-length inference path."""

    def __init__(self, model: ActionLSTM):
        super().__init__()
        self.model = model.eval()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.unpacked(x, lengths)


def _require(module: str) -> None:
    """A missing optional runtime is one line that says what to install, not an ImportError."""
    if importlib.util.find_spec(module) is None:
        raise UserError(f"this needs the '{module}' package: pip install 'actionlstm[onnx]'")


def _metadata(clf: Classifier) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "class_names": clf.class_names,
            "preprocess": clf.preprocess.to_dict(),
            "model_config": clf.model.cfg.to_dict(),
            "meta": {k: v for k, v in clf.meta.items() if k != "history"},
        }
    )


def export_onnx(clf: Classifier, path: Path) -> Path:
    """Write `clf` as one ONNX file (batch of windows in, logits out), atomically."""
    _require("onnx")
    import onnx

    pre = clf.preprocess
    example = (torch.zeros(2, pre.window, pre.num_features), torch.tensor([pre.window, pre.min_frames]))
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():  # the tracer's warnings are about export internals
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _UnpackedLSTM(clf.model.cpu()).eval(),
                example,
                str(tmp),
                dynamo=False,
                opset_version=17,
                input_names=["x", "lengths"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "lengths": {0: "batch"}, "logits": {0: "batch"}},
            )
        graph = onnx.load(str(tmp))
        graph.metadata_props.add(key=METADATA_KEY, value=_metadata(clf))
        onnx.save(graph, str(tmp))
    return path


def export_openvino(clf: Classifier, folder: Path) -> Path:
    """Write `clf` as an OpenVINO IR folder (`model.xml` + `model.bin`, settings in the XML's runtime info)."""
    import openvino as ov

    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; an OpenVINO model is a folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.") as tmp:
        onnx_file = export_onnx(clf, Path(tmp) / "model.onnx")
        model = ov.convert_model(str(onnx_file))
        model.set_rt_info(_metadata(clf), [METADATA_KEY])
        staged = Path(tmp) / "ir"
        ov.save_model(model, str(staged / OPENVINO_XML), compress_to_fp16=False)  # the default float16 weights move probabilities by ~1e-3
        if folder.exists():  # replaced whole, so no file of an older export is left beside the new one
            old = Path(tmp) / "old"
            os.replace(folder, old)
        os.replace(staged, folder)
    return folder


class ExportedModel(nn.Module):
    """An exported ActionLSTM, called like the PyTorch model: tensors in, logits out (on the inputs'
    device). Subclasses run the graph's named inputs through their runtime on the CPU."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        inputs = {"x": x.detach().cpu().float().numpy(), "lengths": lengths.detach().cpu().long().numpy()}
        return torch.from_numpy(self.infer(inputs)).to(x.device)

    def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError


class OnnxModel(ExportedModel):
    """Run by ONNX Runtime."""

    def __init__(self, path: Path, cfg: ModelConfig):
        super().__init__(cfg)
        _require("onnxruntime")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, inputs)[0]


class OpenVinoModel(ExportedModel):
    """Compiled by OpenVINO for the CPU."""

    def __init__(self, model: Any, cfg: ModelConfig):
        super().__init__(cfg)
        import openvino as ov

        # f32: on CPUs with bf16 units OpenVINO would otherwise compute in bf16 (logits off by ~5e-3).
        self.compiled = ov.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})

    def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.compiled(inputs)[0])


def _classifier_from_metadata(path: Path, text: str | None, runtime: nn.Module, make: Any) -> Classifier:
    try:
        info = json.loads(text) if text else None
    except json.JSONDecodeError:
        info = None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise UserError(f"{path} is not an action model exported by `actionlstm export` (no ActionLSTM settings inside)")
    try:
        cfg = ModelConfig(**{**ModelConfig.ADDED_LATER, **info["model_config"]})
        pre = PreprocessConfig(**{**PreprocessConfig.ADDED_LATER, **info["preprocess"]})
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path} has damaged ActionLSTM settings ({exc})") from None
    return Classifier(model=make(runtime, cfg).eval(), class_names=list(info["class_names"]), preprocess=pre, meta=info.get("meta", {}))


def load_onnx(path: Path) -> Classifier:
    _require("onnx")
    import onnx

    try:
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:
        raise UserError(f"{path} is not a readable ONNX model") from None
    return _classifier_from_metadata(path, props.get(METADATA_KEY), path, OnnxModel)


def load_openvino(path: Path) -> Classifier:
    import openvino as ov

    xml = path / OPENVINO_XML if path.is_dir() else path
    if not xml.is_file():
        raise UserError(f"{path} holds no OpenVINO model ({OPENVINO_XML})")
    try:
        model = ov.Core().read_model(str(xml))
    except Exception:
        raise UserError(f"{xml} is not a readable OpenVINO model") from None
    text = model.get_rt_info([METADATA_KEY]).astype(str) if model.has_rt_info([METADATA_KEY]) else None
    return _classifier_from_metadata(path, text, model, OpenVinoModel)


EXPORTERS = {"onnx": export_onnx, "openvino": export_openvino}  # format -> writer(clf, path)
LOADERS = {"onnx": load_onnx, "openvino": load_openvino}  # format -> reader(path) -> Classifier


def exported_format(path: Path) -> str:
    """'onnx', 'openvino' or 'torch', from what the checkpoint path names."""
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if path.is_dir() or path.suffix.lower() == ".xml":
        return "openvino"
    return "torch"


def _cached_export(checkpoint: Path, clf: Classifier, fmt: str) -> Path:
    """`checkpoint` exported for `fmt`, made on first use and kept in the cache (keyed by the file)."""
    key = hashlib.sha256(f"{EXPORT_VERSION}|{file_identity(checkpoint)}".encode()).hexdigest()[:12]
    target = cache_root() / "classifier" / f"{checkpoint.stem}-{key}" / ("model.onnx" if fmt == "onnx" else "openvino")
    if not target.exists():
        try:
            EXPORTERS[fmt](clf, target)
        except OSError as exc:
            raise UserError(f"cannot export {checkpoint.name} for {fmt} into {target.parent}: {exc.strerror or exc}") from None
    return target


def choose_classifier_backend(backend: str, device: torch.device) -> str:
    """`auto`: PyTorch. The exported runtimes run on the CPU only."""
    if backend not in BACKENDS:
        raise UserError(f"unknown classifier backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if backend in FORMATS and device.type != "cpu":
        raise UserError(f"the {backend} classifier backend runs on the CPU; use --device cpu or --classifier-backend torch")
    return "torch" if backend == "auto" else backend


def load_classifier(path: Path, device: torch.device, backend: str = "auto") -> Classifier:
    """Any action model `run` takes: a `.pth` checkpoint (run by `backend`), an exported `.onnx` file
    or an OpenVINO folder. Exported models run on the CPU; their results come back on `device`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    fmt = exported_format(path)
    if fmt != "torch":
        if backend not in ("auto", fmt):
            raise UserError(f"{path} is an exported {fmt} model; it runs with --classifier-backend {fmt} (or auto)")
        return LOADERS[fmt](path)
    chosen = choose_classifier_backend(backend, device)
    clf = load_checkpoint(path, device)
    if chosen == "torch":
        return clf
    exported = _cached_export(path, clf, chosen)
    loaded = LOADERS[chosen](exported)
    loaded.meta = clf.meta  # the checkpoint's own record, training history included
    return loaded
