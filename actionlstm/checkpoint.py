"""Checkpoints: everything needed to rebuild the classifier, in a file `torch.load(weights_only=True)` reads.

A checkpoint holds the model config, the weights, the class names, the preprocessing config (so the
live pipeline prepares its windows exactly as training did) and training metadata. Files are written
to a temporary name and renamed, so an interrupted write never leaves a half-written checkpoint.
"""

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from actionlstm.atomic import atomic_path
from actionlstm.errors import UserError
from actionlstm.model import ActionLSTM, ModelConfig, upgrade_state_dict
from actionlstm.preprocess import PreprocessConfig

FORMAT = "actionlstm-checkpoint"
VERSION = 1


@dataclass
class Classifier:
    """A loaded checkpoint: the model in eval mode plus what it needs to be used."""

    model: ActionLSTM
    class_names: list[str]
    preprocess: PreprocessConfig
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """Trained on `actionlstm sample`'s generated movements: its labels name no real action."""
        return bool(self.meta.get("data", {}).get("synthetic", False))

    @property
    def alert_defaults(self) -> dict[str, dict[str, float]]:
        """label -> {"prob", "seconds"}: the model's own alert operating point for a label, for rules
        that leave them out (`--alert fall`); a built-in model records the one measured for it."""
        return self.meta.get("alert_defaults", {})

    def describe(self) -> str:
        """One line on what the model knows and learnt from, for banners (older checkpoints did not record the data)."""
        data = self.meta.get("data", {})
        learnt = f", trained on {data.get('file') or 'a skeleton pickle'} ({data.get('clips', '?')} clips)" if data else ""
        return f"{len(self.class_names)} classes{learnt}" + ("; SYNTHETIC SAMPLE, not real actions" if self.synthetic else "")


def atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(path: Path, model: ActionLSTM, class_names: list[str], pre: PreprocessConfig, meta: dict[str, Any]) -> None:
    atomic_torch_save(
        {
            "format": FORMAT,
            "version": VERSION,
            "model_config": model.cfg.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "class_names": list(class_names),
            "preprocess": pre.to_dict(),
            "meta": meta,
        },
        path,
    )


def _python_objects(path: Path) -> list[str]:
    """The Python classes and functions a torch file would need to build (none for tensors and plain data)."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a readable zip: damaged, not objects
        return []


def read_torch_file(path: Path, what: str) -> dict[str, Any]:
    """`torch.load(weights_only=True)` with file problems turned into one-line errors of our own
    (torch's own messages run to many lines and suggest turning `weights_only` off, which would let
    a file run code)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        file = open(path, "rb")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        with file:
            payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # torch's messages say little more than "damaged", at length
        if objects := _python_objects(path):
            named = ", ".join(objects[:3]) + (", ..." if len(objects) > 3 else "")
            raise UserError(
                f"{path} is not an ActionLSTM {what}: it holds Python objects that ActionLSTM will not run ({named}); "
                "only tensors and plain data are read"
            ) from None
        raise UserError(f"{path} is not a readable {what}: the file is damaged, cut short or not a PyTorch file") from None
    if not isinstance(payload, dict):
        raise UserError(f"{path} is not an ActionLSTM {what}")
    return payload


def _damaged(path: Path, problem: str) -> UserError:
    return UserError(f"{path} is a damaged ActionLSTM checkpoint ({problem})")


def _section(path: Path, payload: dict[str, Any], key: str) -> Any:
    if key not in payload:
        raise _damaged(path, f"missing '{key}'")
    return payload[key]


def _settings(path: Path, payload: dict[str, Any], key: str, cls: type, what: str, added_later: dict[str, Any]) -> Any:
    """A settings dataclass from `payload[key]`, exactly: every setting present (or added after this
    checkpoint was written, then with the value it was trained with) and none unknown. An unknown one
    comes from a newer ActionLSTM; ignoring it would prepare or build the model unlike its training."""
    values = _section(path, payload, key)
    if not isinstance(values, dict):
        raise _damaged(path, f"'{key}' is a {type(values).__name__}, not a dict of settings")
    names = [f.name for f in fields(cls)]
    if unknown := [k for k in values if k not in names]:
        raise UserError(f"{path} has a {what} setting this ActionLSTM does not know: '{unknown[0]}' (written by a newer version?)")
    if missing := [n for n in names if n not in values and n not in added_later]:
        raise _damaged(path, f"missing {what} setting '{missing[0]}'")
    try:
        return cls(**{**added_later, **values})
    except (TypeError, ValueError) as exc:
        raise _damaged(path, f"{what} settings: {exc}") from None


def _build_model(path: Path, payload: dict[str, Any]) -> ActionLSTM:
    """The model with its weights; the first missing, unknown or misshapen tensor is named."""
    cfg = _settings(path, payload, "model_config", ModelConfig, "model", ModelConfig.ADDED_LATER)
    try:
        model = ActionLSTM(cfg)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise _damaged(path, f"model settings: {str(exc).splitlines()[0]}") from None
    state = _section(path, payload, "state_dict")
    if not isinstance(state, dict):
        raise _damaged(path, f"'state_dict' is a {type(state).__name__}, not a dict of tensors")
    state = upgrade_state_dict(state)
    expected = model.state_dict()
    if missing := [k for k in expected if k not in state]:
        raise _damaged(path, f"missing weights '{missing[0]}'")
    if unknown := [k for k in state if k not in expected]:
        raise _damaged(path, f"unknown weights '{unknown[0]}'")
    for name, tensor in expected.items():
        given = state[name]
        if not isinstance(given, torch.Tensor) or given.shape != tensor.shape:
            shape = list(given.shape) if isinstance(given, torch.Tensor) else type(given).__name__
            raise _damaged(path, f"weights '{name}' are {shape}, the model needs {list(tensor.shape)}")
    model.load_state_dict(state)
    return model


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Classifier:
    """The classifier in a checkpoint file; anything wrong with the file is a one-line `UserError`."""
    payload = read_torch_file(path, "checkpoint")
    if payload.get("format") != FORMAT:
        raise UserError(f"{path} is not an ActionLSTM checkpoint")
    if payload.get("version") != VERSION:
        raise UserError(f"{path} has checkpoint version {payload.get('version')}, this ActionLSTM reads {VERSION}")
    model = _build_model(path, payload)
    pre = _settings(path, payload, "preprocess", PreprocessConfig, "preprocessing", PreprocessConfig.ADDED_LATER)
    class_names = _section(path, payload, "class_names")
    if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
        raise _damaged(path, "'class_names' is not a list of names")
    if len(class_names) != model.cfg.num_classes:
        raise UserError(f"{path} names {len(class_names)} classes but its model predicts {model.cfg.num_classes}")
    return Classifier(model=model.to(device).eval(), class_names=class_names, preprocess=pre, meta=payload.get("meta", {}))
