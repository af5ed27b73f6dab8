"""Training: random augmented windows of the training split, model selection on a held-out part of it.

The test split is never looked at here. Every epoch ends by writing a resume state next to the output
(`<out>.resume.pth`); the checkpoint itself is written once, at the end, from the epoch that scored
best on validation, so an interrupted or failed run never touches an existing checkpoint. Beside it go
what users of ultralytics and MMAction2 look for (see `training_files`): the last epoch's weights, the
per-epoch log as CSV, the settings the run used as JSON, and the training curves.
"""

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from actionlstm import console
from actionlstm.atomic import write_json
from actionlstm.augment import AugmentConfig, SpatialAugment
from actionlstm.background import in_background
from actionlstm.checkpoint import Classifier, atomic_torch_save, save_checkpoint
from actionlstm.dataset import SkeletonDataset, holdout_by_group
from actionlstm.distributed import World
from actionlstm.epochs import epoch_order, epoch_windows, feature_statistics, make_batch
from actionlstm.errors import UserError
from actionlstm.inference import predict_clips
from actionlstm.model import OUTPUT_LAYER, ActionLSTM, ModelConfig, mean_of_members
from actionlstm.preprocess import PreprocessConfig
from actionlstm.reports import plot_training_curves, write_epoch_log
from actionlstm.resume import RESUME_VERSION, read_resume_state, restore_rng_states, resume_path, rng_states, run_fingerprint


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    val_fraction: float = 0.1
    min_val_clips: int = 50  # a smaller validation part picks epochs by noise: then train on all, keep the last
    # Small data sets repeat clips (new crops) so an epoch is still this many windows. ~400 short clips
    # were still learning after 20 epochs of 512, and 1536 beat 1024 on JHMDB's folds at two seeds of
    # three (0.819 against 0.811 over three; scripts/recipe_study.py), as 30 epochs did, without
    # lengthening a few dozen long own clips ...
    min_epoch_windows: int = 1536
    # ... but no more windows than hold this many frames: a window's cost is its frames, and a few
    # dozen clips that fill 120-frame windows learnt fully from epochs of 512 of them (own_data_eval).
    max_epoch_frames: int = 512 * 120
    grad_clip: float = 1.0
    seed: int = 0
    # A fresh model (fine-tuning keeps the starting model's; see ModelConfig): members of 64 units on
    # inputs standardised per feature. On JHMDB's three folds inside the train splits (scripts/recipe_study.py
    # --cv), three members of two layers scored 0.783 against 0.771 for one of 128 in 1.4x its time; five of
    # one layer train in about the time of those three (a layer is a chain of per-frame steps, and the
    # steps, not their width, cost the time) and scored 0.811 against their 0.796 over three seeds.
    hidden: int = 64
    standardize: bool = True
    members: int = 5
    layers: int = 1


# The model before members and standardising: one BiLSTM of two layers of 128 units on the features as
# they come. What the built-in falls model, the demo and recipe_study's earlier recipes pin (TrainConfig(**ONE_WIDE)).
ONE_WIDE = {"hidden": 128, "members": 1, "standardize": False, "layers": 2}


def training_files(out: Path) -> dict[str, Path]:
    """The files a finished run writes beside its (best) checkpoint `out`, e.g. `my.last.pth`."""
    return {
        "last": out.with_suffix(".last.pth"),
        "epochs_csv": out.with_suffix(".epochs.csv"),
        "settings_json": out.with_suffix(".settings.json"),
        "curves_png": out.with_suffix(".curves.png"),
    }


def initial_model(class_names: list[str], pre: PreprocessConfig, init: Classifier | None, cfg: TrainConfig | None = None) -> ActionLSTM:
    """A fresh model as `cfg` (default: `TrainConfig()`) says, or one that starts from `init`
    (fine-tuning): same architecture and weights, with a fresh output layer when the class list differs."""
    cfg = cfg or TrainConfig()
    if init is None:
        return ActionLSTM(
            ModelConfig(
                num_features=pre.num_features,
                num_classes=len(class_names),
                hidden=cfg.hidden,
                standardize=cfg.standardize,
                members=cfg.members,
                layers=cfg.layers,
            )
        )
    model = ActionLSTM(replace(init.model.cfg, num_classes=len(class_names)))
    state = dict(init.model.state_dict())
    if list(init.class_names) != list(class_names):
        state = {k: v for k, v in state.items() if OUTPUT_LAYER not in k}
    model.load_state_dict(state, strict=False)
    return model


def inherited_meta(meta: dict, class_names: list[str]) -> dict:
    """What a fine-tuned model keeps of its starting model's record, for the labels it still has: the
    alert operating points (`--alert fall` keeps meaning what it meant; measure your own) and the
    fall cue (`pipeline.falls`: geometry, which no training changes; the earlier `descent` cue too)."""
    kept = {}
    if points := {label: point for label, point in meta.get("alert_defaults", {}).items() if label in class_names}:
        kept["alert_defaults"] = points
    for cue in ("fall", "descent"):
        if (meta.get(cue) or {}).get("label") in class_names:
            kept[cue] = meta[cue]
    return kept


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: weight decay on weight matrices only. Biases and norm gains (every
    parameter of fewer than 2 dimensions, as in nanoGPT) set offsets and scales; pulling those
    towards 0 is no simpler model, only a different one."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


@contextmanager
def spare_core_for_batches(device: torch.device) -> Iterator[None]:
    """On the CPU, one torch thread fewer while training: batches are made on a thread of their own
    (`in_background`), and torch's threads spin-wait for one another, so with as many threads as cores
    a busy core stalls every step. Measured on 2 cores shared with other work (310 JHMDB clips, 8 steps
    an epoch): 13 to 70 s an epoch with two torch threads, about 4 s with one (and 2.3x the features)."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(max(1, threads - 1))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def members_loss(criterion: nn.Module, each: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean of every member's own loss, from their logits [K, B, C]: members learn side by side,
    each to be right alone, not to be right only together (a loss on the averaged output would let one
    member lean on another's mistakes)."""
    return criterion(each.flatten(0, 1), y.repeat(len(each)))


def train(
    dataset: SkeletonDataset,
    train_indices: np.ndarray,
    class_names: list[str],
    out: Path,
    device: torch.device,
    cfg: TrainConfig,
    pre: PreprocessConfig | None = None,
    aug: AugmentConfig | None = None,
    resume: bool = False,
    init: Classifier | None = None,
    world: World = World(),
) -> dict:
    """Train, write the best checkpoint to `out` and the `training_files` beside it; return a summary."""
    if init is not None:
        pre = init.preprocess  # the starting model's features: changing them would make its weights meaningless
    pre = pre or PreprocessConfig()
    aug = aug or AugmentConfig()
    if cfg.batch_size < world.size:
        raise UserError(f"--batch-size {cfg.batch_size} is smaller than the {world.size} processes that share each batch")
    torch.manual_seed(cfg.seed)
    order_rng = np.random.default_rng(cfg.seed)  # the same in every process: which clips each step trains on
    rng = np.random.default_rng([cfg.seed, world.rank])  # this process's crops and augmentations
    fit_indices, val_indices = holdout_by_group(dataset, train_indices, cfg.val_fraction, cfg.seed)
    if len(val_indices) < cfg.min_val_clips:
        fit_indices, val_indices = train_indices, train_indices[:0]

    model = initial_model(class_names, pre, init, cfg)
    if init is None and model.cfg.standardize:
        model.set_feature_statistics(*feature_statistics(dataset, fit_indices, pre, aug, cfg.seed))
    model = model.to(device)
    torch.manual_seed(cfg.seed + world.rank)  # dropout: each process its own masks
    trainer = model if world.size == 1 else DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = math.ceil(epoch_windows(dataset, fit_indices, pre, cfg) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15)
    mixed = device.type == "cuda"  # float16 autocast with loss scaling: the usual CUDA mixed precision
    scaler = torch.amp.GradScaler("cuda", enabled=mixed)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    history: list[dict] = []
    best = {"val_top1": -1.0, "epoch": 0, "state_dict": None}
    start_epoch = 0

    state_file = resume_path(out)
    fingerprint = run_fingerprint(dataset, fit_indices, class_names, pre, aug, cfg, model)
    if resume:
        state = read_resume_state(state_file, fingerprint, world.size)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        order_rng.bit_generator.state = state["order_rng"]
        restore_rng_states(state["rng"][world.rank], rng)
        history, best, start_epoch = state["history"], state["best"], state["epoch"]

    spatial = SpatialAugment(aug, rng, pre.fps)
    columns = (
        TextColumn("[bold]epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.1%}  val {task.fields[val]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    with spare_core_for_batches(device), Progress(*columns, console=console.err, disable=not world.is_main) as progress:
        for epoch in range(start_epoch, cfg.epochs):
            task = progress.add_task("train", total=steps_per_epoch, epoch=f"{epoch + 1}/{cfg.epochs}", loss=0.0, acc=0.0, val="-")
            model.train()
            order = epoch_order(fit_indices, dataset.labels, steps_per_epoch * cfg.batch_size, order_rng)
            shares = [
                np.array_split(order[s * cfg.batch_size : (s + 1) * cfg.batch_size], world.size)[world.rank] for s in range(steps_per_epoch)
            ]
            loss_sum, correct, seen = 0.0, 0, 0
            epoch_start = time.perf_counter()
            # The next batches are made on a thread while the model trains on this one. Only this epoch's
            # are made, so the random state at the epoch's end is the same as without the thread.
            batches = (make_batch(dataset, share, pre, aug, spatial, rng) for share in shares)
            for x, lengths, y in in_background(batches, ahead=2, name="batches"):
                x, lengths, y = x.to(device), lengths.to(device), y.to(device)
                with torch.autocast("cuda", dtype=torch.float16, enabled=mixed):
                    each = trainer(x, lengths, each_member=True).float()
                loss = members_loss(criterion, each, y)
                logits = mean_of_members(each.detach())
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                loss_sum += loss.item() * len(y)
                correct += int((logits.argmax(-1) == y).sum())
                seen += len(y)
                progress.update(task, advance=1, loss=loss_sum / seen, acc=correct / seen)
            loss_sum, correct, seen = world.sum([loss_sum, correct, seen])
            epoch_seconds = time.perf_counter() - epoch_start

            val_top1 = float("nan")
            if len(val_indices):  # every process scores the same model on the same clips, so all choose alike
                probs = predict_clips(model, pre, dataset, val_indices, device)
                val_top1 = float((probs.argmax(-1) == dataset.labels[val_indices]).mean())
            progress.update(task, loss=loss_sum / seen, acc=correct / seen, val=f"{val_top1:.1%}" if len(val_indices) else "-")
            history.append(
                {
                    "epoch": epoch + 1,
                    "loss": loss_sum / seen,
                    "train_top1": correct / seen,
                    "val_top1": val_top1,
                    "lr": scheduler.get_last_lr()[0],
                    "seconds": epoch_seconds,
                }
            )
            # Without a validation part the last epoch is kept.
            score = val_top1 if len(val_indices) else float(epoch)
            if score > best["val_top1"]:
                best = {
                    "val_top1": score,
                    "epoch": epoch + 1,
                    "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                }
            every_rng = world.gather(rng_states(rng))
            if world.is_main:
                atomic_torch_save(
                    {
                        "version": RESUME_VERSION,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(),
                        "order_rng": order_rng.bit_generator.state,
                        "rng": every_rng,
                        "history": history,
                        "best": best,
                        "epoch": epoch + 1,
                        "fingerprint": fingerprint,
                    },
                    state_file,
                )

    data = dataset.describe(train_indices, len(class_names))
    summary = {
        "epochs": cfg.epochs,
        "best_epoch": best["epoch"],
        "val_top1": history[best["epoch"] - 1]["val_top1"],
        "train_clips": int(len(fit_indices)),
        "val_clips": int(len(val_indices)),
        "windows_per_epoch": steps_per_epoch * cfg.batch_size,
        "seconds": time.perf_counter() - started,
        "world_size": world.size,
        "data": data,
        "train_config": asdict(cfg),
        "augment": asdict(aug),
        "history": history,
        **({} if init is None else inherited_meta(init.meta, class_names)),
    }
    if world.is_main:
        write_training_files(out, model, best, summary, class_names, pre, device, resume)
    world.barrier()  # the files exist before any process returns
    return summary


def write_training_files(
    out: Path,
    model: ActionLSTM,
    best: dict,
    summary: dict,
    class_names: list[str],
    pre: PreprocessConfig,
    device: torch.device,
    resumed: bool,
) -> None:
    """The best checkpoint at `out`, the `training_files` beside it; the resume state goes."""
    files = training_files(out)
    save_checkpoint(files["last"], model, class_names, pre, {**summary, "weights": f"last (epoch {summary['epochs']})"})
    model.load_state_dict(best["state_dict"])
    save_checkpoint(out, model, class_names, pre, {**summary, "weights": f"best (epoch {best['epoch']})"})
    write_epoch_log(summary["history"], files["epochs_csv"])
    settings = {
        "data": summary["data"],
        "device": str(device),
        "world_size": summary["world_size"],
        "resumed": resumed,
        "windows_per_epoch": summary["windows_per_epoch"],
        "train": summary["train_config"],
        "augment": summary["augment"],
        "preprocess": pre.to_dict(),
        "model": model.cfg.to_dict(),
        "class_names": list(class_names),
    }
    write_json(settings, files["settings_json"])
    plot_training_curves(summary["history"], files["curves_png"])
    resume_path(out).unlink(missing_ok=True)
