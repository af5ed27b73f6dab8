"""`actionlstm check-camera`: a camera's everyday footage replayed as `run` runs it; false alarms per
hour, how well the pose model sees people there, and what to change (`pipeline.camera_check`)."""

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from actionlstm import console
from actionlstm.cli.options import AlertOpt, JsonOpt, RulesOpt, command, print_json, with_settings
from pipeline.settings import RecognizerSettings


@command
@with_settings(RecognizerSettings)
def check_camera(
    videos: Annotated[
        list[str], typer.Argument(metavar="VIDEO", help="Recordings of the camera's everyday life, with no real event in them.")
    ],
    settings: RecognizerSettings,
    alert: AlertOpt = None,
    rules: RulesOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Replay a camera's everyday footage (no fall in it) as `run` would: every event of the alert rules
    (default: the model's own, e.g. fall for `falls`) is a false alarm, listed with its time and place;
    also how well the pose model sees people there, and what to change."""
    from pipeline.camera_check import check_camera as check
    from pipeline.camera_check import check_videos
    from pipeline.recognizer import ActionRecognizer
    from pipeline.rules import read_rules

    check_videos(videos)
    found_rules = read_rules(alert, rules)
    recognizer = ActionRecognizer(settings, draw=False)
    every = f"{len(videos)} video{'s' if len(videos) > 1 else ''}"
    console.err.print(f"checking {every} with {escape(recognizer.checkpoint.name)} on {recognizer.device}", soft_wrap=True)
    result = check(recognizer, videos, found_rules)
    report = result.to_json()
    if json_output:
        print_json(report)
    else:
        print_report(report)
    if result.exit_code:  # stopped, not finished: the shell's codes say so
        raise typer.Exit(result.exit_code)


CAPTION = (
    "person: frames with someone in them; conf.: median keypoint confidence; height, model: median person height "
    "in px of the frame and of the pose model's input; torso, feet: a person's frames showing shoulders and hips, an ankle"
)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(report: dict) -> None:
    """The figures as a table (a row per video and their total), the alarms as another, then the advice."""
    from pipeline.camera_check import clock

    console.out.print(f"checkpoint {escape(report['checkpoint'])}, alert rules {escape(', '.join(report['rules']))}", soft_wrap=True)
    table = Table(title="What the camera sees", caption=CAPTION, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    table.add_column("video", min_width=min(24, max((len(Path(row["video"]).name) for row in report["videos"]), default=5)))
    for title in ("length", "person", "conf.", "height", "model", "torso", "feet", "alarms", "/hour"):
        table.add_column(title, justify="right", no_wrap=True)
    rows = [*report["videos"], {**report["total"], "video": "total"}] if len(report["videos"]) > 1 else report["videos"]
    for k, row in enumerate(rows):
        table.add_row(
            escape(Path(row["video"]).name),
            clock(row["seconds"]),
            _share(row["person_share"]),
            _number(row["keypoint_confidence"], 2),
            _number(row["person_height"]),
            _number(row["person_height_input"]),
            _share(row["torso_seen"]),
            _share(row["feet_seen"]),
            str(row["false_alarms"]),
            _number(row["false_alarms_per_hour"], 1),
            end_section=k == len(rows) - 2,  # a rule above the total
        )
    console.out.print(table)
    if report["alarms"]:
        alarms = Table(title="False alarms", box=box.SIMPLE_HEAD)
        for title in ("video", "time", "person", "label", "prob", "box x1, y1, x2, y2 (px)"):
            alarms.add_column(title)
        for alarm in report["alarms"]:
            place = ", ".join(f"{v:.0f}" for v in alarm["box"])
            where = (escape(Path(alarm["video"]).name), clock(alarm["time"]), str(alarm["person"]))
            alarms.add_row(*where, escape(alarm["label"]), f"{alarm['prob']:.2f}", place)
        console.out.print(alarms)
    console.out.print("[bold]What to change[/]")
    for line in report["advice"]:
        console.out.print(f"- {escape(line)}", soft_wrap=True)
