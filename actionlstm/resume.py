"""What an interrupted training resumes from: after every epoch `train` writes `<out>.resume.pth`
(`resume_path`) with the model, optimiser, schedule and every random state, and a fingerprint of the
run (`run_fingerprint`), so that `--resume` continues only the run that was interrupted and ends
with exactly the weights an uninterrupted run would have."""

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from actionlstm.augment import AugmentConfig
from actionlstm.checkpoint import read_torch_file
from actionlstm.dataset import SkeletonDataset
from actionlstm.errors import UserError
from actionlstm.model import ActionLSTM
from actionlstm.preprocess import PreprocessConfig

if TYPE_CHECKING:
    from actionlstm.train import TrainConfig

RESUME_VERSION = 4  # 2: AdamW parameter groups and CUDA RNG states; 3: a random state per process, loss scaler; 4: members


def resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume.pth")


def run_fingerprint(
    dataset: SkeletonDataset,
    fit_indices: np.ndarray,
    class_names: list[str],
    pre: PreprocessConfig,
    aug: AugmentConfig,
    cfg: "TrainConfig",
    model: ActionLSTM,
) -> str:
    """What a resumed run must share with the interrupted one: clips, labels, classes, settings and
    the starting weights (which differ when fine-tuning from another checkpoint)."""
    digest = hashlib.sha256()
    for part in (
        dataset.frame_dirs[fit_indices].tolist(),
        dataset.labels[fit_indices].tolist(),
        class_names,
        pre.to_dict(),
        asdict(aug),
        asdict(cfg),
        model.cfg.to_dict(),
    ):
        digest.update(json.dumps(part, sort_keys=True).encode())
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def rng_states(rng: np.random.Generator) -> dict:
    """Every random state a resumed run needs to draw what the uninterrupted one would have."""
    return {
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(state: dict, rng: np.random.Generator) -> None:
    """The inverse of `rng_states`. CUDA states are restored where the same number of GPUs is present
    (a run begun on a CPU and resumed on a GPU has none to restore)."""
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    if torch.cuda.is_available() and len(state["cuda_rng"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def read_resume_state(path: Path, fingerprint: str, processes: int) -> dict:
    """The resume state at `path`, refused in one line unless this version wrote it, for the run with
    this `fingerprint`, in as many processes."""
    state = read_torch_file(path, "resume state")
    if state.get("version") != RESUME_VERSION:
        raise UserError(f"{path} was written by an earlier ActionLSTM; start afresh without --resume")
    if state.get("fingerprint") != fingerprint:
        raise UserError(f"{path} belongs to a run with other data or settings; start afresh without --resume")
    if len(state["rng"]) != processes:
        raise UserError(f"{path} was written by a run of {len(state['rng'])} processes; resume it with as many (torchrun --nproc-per-node)")
    return state
