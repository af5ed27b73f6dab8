"""Commands on models: the built-in ones (`models`), export to ONNX Runtime or OpenVINO, the INT8 pose model (`quantize-pose`)."""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from actionlstm import console
from actionlstm.builtin import resolve_checkpoint
from actionlstm.cli.options import JsonOpt, PoseModelOpt, command
from actionlstm.errors import UserError
from actionlstm.paths import check_output_file, check_writable_folder


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
        say = lambda text: console.out.print(text, soft_wrap=True)  # noqa: E731
        say(f"[bold]{escape(model['name'])}[/]: {escape(model.get('description', ''))}")
        say(f"  classes: {escape(', '.join(model['classes']))}")
        for key, title in (("data", "trained on"), ("license", "license"), ("citation", "cite"), ("measured", "measured")):
            if model.get(key):
                say(f"  {title}: {escape(str(model[key]))}")
        for label in model["alert_defaults"]:
            rule = AlertRule(label).completed(model["alert_defaults"])  # as `--alert LABEL` is completed in run and serve
            say(f"  --alert {escape(label)} means: {escape(str(rule))} (its own operating point)")
        if cue := model["fall"]:
            say(
                f"  {escape(cue['label'])} is read from geometry: someone up (on their feet or a seat) is on the floor within "
                f"{cue['within']:g} s, with no pause sitting or kneeling on the way, and still lies there (or is out of sight) "
                f"{cue['confirm']:g} s later; lying down on a bed or getting down on purpose is not a fall"
            )
        say(
            f"  use: actionlstm run 0 --checkpoint {escape(model['name'])}"
            + (f" --alert {escape(model['alert'])}" if model.get("alert") else "")
        )


@command
def export(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            parser=resolve_checkpoint,
            metavar="PATH|NAME",
            help="A checkpoint written by `actionlstm train` (.pth), or a built-in model's name.",
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="onnx (one .onnx file) or openvino (a folder with model.xml and model.bin).")
    ] = "onnx",
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write it (default: beside the checkpoint, .onnx or _openvino_model).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", metavar="", help="Replace an existing export at --out.")] = False,
) -> None:
    """Export an action model for ONNX Runtime or OpenVINO: class names and preprocessing go inside,
    so `run --checkpoint OUT` uses it like the .pth (same Top-5 within 1e-3)."""
    from actionlstm.builtin import builtin_name
    from actionlstm.checkpoint import load_checkpoint
    from actionlstm.export import EXPORTERS, FORMATS, exported_format

    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}' (choose from {', '.join(FORMATS)})")
    if exported_format(checkpoint) != "torch":
        raise UserError(f"{checkpoint} is already an exported model; export the .pth checkpoint it came from")
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
    shown = escape(str(target))
    console.out.print(f"wrote {shown} ({fmt}; {len(clf.class_names)} classes); run it with --checkpoint {shown}", soft_wrap=True)


@command
def quantize_pose(
    videos: Annotated[
        list[Path] | None,
        typer.Argument(help="Your cameras' footage to calibrate on (a few minutes of the rooms, people in them); none: generated frames."),
    ] = None,
    pose_model: PoseModelOpt = None,
    imgsz: Annotated[int, typer.Option("--imgsz", min=32, help="Pose inference size in pixels, as run and serve will use it.")] = 640,
) -> None:
    """Make the INT8 pose model (`--pose-backend openvino-int8`, auto's choice for run and serve on the CPU)
    again, calibrated on your own footage; it replaces the cached one for these weights and size."""
    import torch

    from pipeline.pose import choose_backend, int8_model, resolve_pose_model
    from pipeline.sources import check_source

    for video in videos or []:
        check_source(str(video))
    weights = resolve_pose_model(pose_model)
    choose_backend("openvino-int8", torch.device("cpu"), weights)  # nncf missing, or weights it cannot export: one line now
    made = int8_model(weights, imgsz, list(videos) if videos else None, remake=True)
    console.out.print(f"wrote {escape(made)}; run and serve use it with --pose-backend auto or openvino-int8 at --imgsz {imgsz}")
