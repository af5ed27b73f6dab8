"""Checkpoints: everything needed to rebuild the classifier, in a file `torch.load(weights_only=True)` reads.

A checkpoint holds the model config, the weights, the class names, the preprocessing config (so the
live pipeline prepares its windows exactly as training did) and training metadata. Files are written
to a temporary name and renamed, so an interrupted write never leaves a half-written checkpoint.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from actionlstm.atomic import atomic_path
from actionlstm.errors import UserError
from actionlstm.model import ActionLSTM, ModelConfig
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


def read_torch_file(path: Path, what: str) -> dict[str, Any]:
    """`torch.load(weights_only=True)` with file problems turned into one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable {what} ({first_line})") from None
    if not isinstance(payload, dict):
        raise UserError(f"{path} is not an ActionLSTM {what}")
    return payload


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Classifier:
    payload = read_torch_file(path, "checkpoint")
    if payload.get("format") != FORMAT:
        raise UserError(f"{path} is not an ActionLSTM checkpoint")
    if payload.get("version") != VERSION:
        raise UserError(f"{path} has checkpoint version {payload.get('version')}, this ActionLSTM reads {VERSION}")
    try:
        model = ActionLSTM(ModelConfig(**payload["model_config"]))
        model.load_state_dict(payload["state_dict"])
        pre = PreprocessConfig.from_dict(payload["preprocess"])
        class_names = [str(n) for n in payload["class_names"]]
        if not (pre.window >= 1 and pre.fps > 0 and pre.min_frames >= 1):
            raise ValueError(f"preprocessing settings out of range: {pre}")
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise UserError(f"{path} is a damaged ActionLSTM checkpoint ({str(exc).splitlines()[0]})") from None
    if len(class_names) != model.cfg.num_classes:
        raise UserError(f"{path} names {len(class_names)} classes but its model predicts {model.cfg.num_classes}")
    return Classifier(model=model.to(device).eval(), class_names=class_names, preprocess=pre, meta=payload.get("meta", {}))
