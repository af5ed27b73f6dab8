"""Commands on skeleton pickles: train, evaluate, predict, sample, and extract (videos to a pickle)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from actionlstm import console
from actionlstm.builtin import resolve_checkpoint
from actionlstm.cli.options import (
    CheckpointOpt,
    DataOpt,
    DeviceOpt,
    JsonOpt,
    LabelsOpt,
    NoCacheOpt,
    SplitOpt,
    TestSplitOpt,
    TrainSplitOpt,
    command,
    print_json,
    with_settings,
)
from actionlstm.errors import UserError
from actionlstm.paths import check_output_file, check_writable_folder
from pipeline.settings import PoseSettings


@command
def train(
    data: DataOpt,
    split: SplitOpt = 1,
    train_split: TrainSplitOpt = None,
    labels: LabelsOpt = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training split.")] = 20,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate of the one-cycle schedule.")] = 3e-3,
    out: Annotated[Path, typer.Option("--out", help="Where to write the checkpoint.")] = Path("checkpoints/action_lstm_ucf101.pth"),
    device: DeviceOpt = "auto",
    seed: Annotated[int, typer.Option(help="Seed for the validation hold-out, shuffling and augmentation.")] = 0,
    members: Annotated[
        int | None,
        typer.Option(
            min=1,
            show_default=False,
            help="BiLSTMs trained side by side whose probabilities are averaged (default: the recipe's): steadier on a few hundred "
            "clips; each one more costs training and live time. --init keeps its model's.",
        ),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", metavar="", help="Continue the interrupted run that writes to --out.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", metavar="", help="Replace an existing checkpoint at --out.")] = False,
    init: Annotated[
        Path | None,
        typer.Option(
            "--init",
            parser=resolve_checkpoint,
            metavar="PATH|NAME",
            help="Fine-tune from this checkpoint (or built-in model): its preprocessing and weights; "
            "a new class list gets a fresh output layer.",
        ),
    ] = None,
    no_cache: NoCacheOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Train ActionLSTM on the training split. With enough clips the best epoch on a held-out
    validation part is kept; with few (your own recordings) all clips train and the last epoch is kept."""
    from actionlstm.checkpoint import load_checkpoint
    from actionlstm.dataset import load_dataset
    from actionlstm.device import resolve_device
    from actionlstm.distributed import join, launched_world, leave, speak_from_main
    from actionlstm.export import exported_format
    from actionlstm.labels import class_names_for, labels_file_for
    from actionlstm.resume import resume_path
    from actionlstm.train import TrainConfig, training_files
    from actionlstm.train import train as run_training

    world = speak_from_main(launched_world())
    dev = join(world, resolve_device(device))
    check_output_file(out)
    if out.exists() and not (overwrite or resume):
        raise UserError(f"{out} already exists (an earlier training wrote it); give --out another file name, or --overwrite to replace it")
    if init is not None and exported_format(init) != "torch":
        raise UserError(f"--init {init} is an exported model; fine-tuning starts from the .pth checkpoint it was exported from")
    start = load_checkpoint(init) if init is not None else None
    dataset = load_dataset(data, use_cache=not no_cache)
    names = class_names_for(dataset, labels_file_for(labels, data))
    indices = dataset.split_indices(train_split or f"train{split}")
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, **({} if members is None else {"members": members}))
    processes = f", {world.size} processes" if world.size > 1 else ""
    console.err.print(f"training on {len(indices)} clips, {len(names)} classes, device {dev}{processes}")
    if start is not None:
        kept = list(start.class_names) == names
        layer = "its output layer kept" if kept else f"a fresh output layer for {len(names)} classes"
        console.err.print(f"fine-tuning from {init} ({layer})", soft_wrap=True)
    try:
        summary = run_training(dataset, indices, names, out, dev, cfg, resume=resume, init=start, world=world)
    except KeyboardInterrupt:
        if resume_path(out).is_file():
            hint = f"{out} was not written. To continue from the last finished epoch, run the same command with --resume"
            console.err.print(f"training stopped; {hint}", soft_wrap=True)
        else:
            console.err.print(f"training stopped before its first epoch ended; {out} was not written", soft_wrap=True)
        raise
    finally:
        leave(world)
    if not world.is_main:
        return
    files = {name: str(path) for name, path in training_files(out).items()}
    result = {
        "checkpoint": str(out),
        **{key: summary[key] for key in ("best_epoch", "val_top1", "train_clips", "val_clips")},
        "seconds": round(summary["seconds"], 1),
        "world_size": summary["world_size"],
        **files,
    }
    if json_output:
        print_json(result)
        return
    if summary["val_clips"]:
        chosen = f"best epoch {summary['best_epoch']}, validation top-1 {summary['val_top1']:.1%}"
    else:
        chosen = f"last epoch: {summary['train_clips']} clips are too few to hold out a validation part"
    console.out.print(f"saved [bold]{escape(str(out))}[/] ({chosen}, {summary['seconds']:.0f} s)", soft_wrap=True)
    console.out.print(
        f"beside it: last epoch {escape(files['last'])}, per-epoch log {escape(files['epochs_csv'])}, "
        f"settings {escape(files['settings_json'])}, curves {escape(files['curves_png'])}",
        soft_wrap=True,
    )


@command
def evaluate(
    data: DataOpt,
    checkpoint: CheckpointOpt,
    split: SplitOpt = 1,
    test_split: TestSplitOpt = None,
    train_split: TrainSplitOpt = None,
    labels: LabelsOpt = None,
    device: DeviceOpt = "auto",
    report_dir: Annotated[
        Path | None, typer.Option(help="Where the confusion matrix and per-class CSV go (default: next to the checkpoint).")
    ] = None,
    no_cache: NoCacheOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Top-1, Top-5 and mean class accuracy on the test split, with a confusion matrix PNG and a per-class CSV."""
    from actionlstm.evaluate import evaluate as run_evaluation
    from actionlstm.evaluate import load_for_evaluation

    clf, dataset, dev = load_for_evaluation(data, checkpoint, labels, device, use_cache=not no_cache)
    name = test_split or f"test{split}"
    indices = dataset.split_indices(name)
    folder = report_dir or checkpoint.parent
    check_writable_folder(folder)
    metrics = run_evaluation(clf, dataset, indices, dev, folder, f"{checkpoint.stem}.{name}")
    metrics["split"] = name
    if json_output:
        print_json(metrics)
        return
    top = f"top-1 [bold]{metrics['top1']:.2%}[/]  top-5 {metrics['top5']:.2%}"
    console.out.print(f"{name}: {top}  mean class {metrics['mean_class_acc']:.2%}  ({metrics['n']} clips)")
    console.out.print(f"confusion matrix: {metrics['confusion_matrix_png']}\nper-class CSV:    {metrics['per_class_csv']}")


@command
def predict(
    data: DataOpt,
    checkpoint: CheckpointOpt,
    idx: Annotated[int | None, typer.Option("--idx", help="Index of the clip within the test split.")] = None,
    frame_dir: Annotated[str | None, typer.Option("--frame-dir", help="Pick the clip by name instead.")] = None,
    split: SplitOpt = 1,
    test_split: TestSplitOpt = None,
    train_split: TrainSplitOpt = None,
    labels: LabelsOpt = None,
    device: DeviceOpt = "auto",
    no_cache: NoCacheOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Top-5 actions (with probabilities) for one test clip, and its true label."""
    from actionlstm.evaluate import load_for_evaluation, predict_clip

    if (idx is None) == (frame_dir is None):
        raise UserError("give exactly one of --idx N or --frame-dir NAME")
    clf, dataset, dev = load_for_evaluation(data, checkpoint, labels, device, use_cache=not no_cache)
    if frame_dir is not None:
        index = dataset.index_of(frame_dir)
    else:
        name = test_split or f"test{split}"
        members = dataset.split_indices(name)
        if not 0 <= idx < len(members):
            raise UserError(f"--idx {idx} is out of range: split '{name}' has {len(members)} clips (0..{len(members) - 1})")
        index = int(members[idx])
    result = predict_clip(clf, dataset, index, dev)
    if json_output:
        print_json(result)
        return
    console.out.print(f"[bold]{result['frame_dir']}[/] ({result['frames']} frames), true label: [bold]{result['label']}[/]")
    for rank, item in enumerate(result["top5"], 1):
        mark = "  <- true" if item["label"] == result["label"] else ""
        console.out.print(f"  {rank}. {item['label']:<28} {item['prob']:6.1%}{mark}")


@command
def sample(
    out: Annotated[Path, typer.Argument(help="Where to write the sample pickle.")],
    classes: Annotated[int, typer.Option(min=2, help="Number of action classes.")] = 6,
    clips_per_class: Annotated[int, typer.Option(min=3)] = 30,
    min_frames: Annotated[int, typer.Option(min=2)] = 40,
    max_frames: Annotated[int, typer.Option(min=2)] = 200,
    seed: int = 0,
) -> None:
    """Write a learnable sample pickle in the UCF101 skeleton format (and its class names, one per line)."""
    from actionlstm.synthetic import write_sample_pickle

    if max_frames < min_frames:
        raise UserError("--max-frames must be at least --min-frames")
    check_output_file(out)
    names = write_sample_pickle(out, num_classes=classes, clips_per_class=clips_per_class, frames=(min_frames, max_frames), seed=seed)
    labels_file = out.with_suffix(".classes.txt")
    labels_file.write_text("\n".join(names) + "\n", encoding="utf-8")
    console.out.print(f"wrote {out} ({classes} classes x {clips_per_class} clips) and {labels_file}")


@command
@with_settings(PoseSettings)
def extract(
    videos: Annotated[Path, typer.Argument(help="A folder with one subfolder of videos per action, or a text file of 'path label' lines.")],
    out: Annotated[Path, typer.Option("--out", help="The skeleton pickle to write (class names go to OUT.classes.txt).")],
    settings: PoseSettings,
    test: Annotated[
        str | None, typer.Option("--test", help="Regex searched in each video's path: matches go to test1, the rest to train1.")
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            help="Regex whose first group names a video's group (e.g. the actor, 'person(\\d+)'); groups never straddle the split. "
            "Default UCF101's _gNN_.",
        ),
    ] = None,
    test_fraction: Annotated[float, typer.Option(help="Share of each class's groups held out as test1 (without --test).")] = 0.2,
    max_persons: Annotated[int, typer.Option(min=1, help="Persons kept per video, strongest first.")] = 2,
    workers: Annotated[int, typer.Option(min=1, help="Extraction processes run side by side.")] = 1,
    strict: Annotated[
        bool, typer.Option("--strict", metavar="", help="Fail (and write nothing) if any video or folder is skipped.")
    ] = False,
) -> None:
    """Skeletons of your own labelled videos, with the live pose stage, as a UCF101-format pickle."""
    from dataclasses import replace

    from actionlstm.device import resolve_device
    from actionlstm.distributed import join, launched_world, leave, speak_from_main
    from actionlstm.paths import cache_root
    from actionlstm.videoset import find_videos
    from pipeline.extract.dataset import extract_dataset
    from pipeline.pose import choose_backend, resolve_pose_model
    from pipeline.tracking import Tracker

    if out.suffix != ".pkl":
        raise UserError(f"{out}: the output is a pickle, give a .pkl file name")
    check_output_file(out)
    check_writable_folder(cache_root() / "extract")  # where finished videos are kept for reruns
    world = speak_from_main(launched_world())
    dev = resolve_device(settings.device)
    choose_backend(settings.pose_backend, dev, resolve_pose_model(settings.pose_model))  # a bad backend, model or tracker fails now
    Tracker(settings.tracker, settings.lost_seconds)
    videoset = find_videos(videos)
    try:
        dev = join(world, dev)
        if world.size > 1:
            settings = replace(settings, device=str(dev))  # each process on the GPU of its local rank
        result = extract_dataset(videoset, out, settings, max_persons, test, group, test_fraction, workers, strict, world)
    finally:
        leave(world)
    if result is None:  # another process writes the pickle
        return
    for line in result.skipped:
        console.out.print(f"[yellow]skipped[/] {escape(line)}", soft_wrap=True)
    for line in result.warnings:
        console.out.print(f"[yellow]warning[/] {escape(line)}", soft_wrap=True)
    console.out.print(
        f"wrote {out}: {result.clips} clips of {result.classes} classes (train1 {result.train}, test1 {result.test}), "
        f"{result.extracted} videos extracted now, {len(result.skipped)} skipped; class names in {out.with_suffix('.classes.txt')}",
        soft_wrap=True,
    )
