"""Commands on frames: run (the live pipeline), record (training clips), timeline (of an earlier run)."""

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from actionlstm import console
from actionlstm.cli.options import (
    AlertOpt,
    DeviceOpt,
    MinSegmentOpt,
    PoseModelOpt,
    PrivacyOpt,
    RulesOpt,
    ShowOpt,
    ZoneOpt,
    command,
    with_settings,
)
from actionlstm.errors import UserError
from actionlstm.paths import check_writable_folder
from pipeline.settings import PoseSettings, RecognizerSettings


@command
@with_settings(RecognizerSettings)
def run(
    source: Annotated[
        list[str],
        typer.Argument(
            help="Webcam index (0), video file, or stream URL; several run side by side, "
            "each with its own outputs (o.mp4 -> o.0.mp4, o.1.mp4...)."
        ),
    ],
    settings: RecognizerSettings,
    save: Annotated[Path | None, typer.Option(help="Write the annotated video here (.mp4 or .avi).")] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option(
            help="Write one JSON line per frame: ids, boxes (x1, y1, x2, y2 pixels), Top-5 ('-' for stdout; a FIFO is written to in place)."
        ),
    ] = None,
    segments: Annotated[
        Path | None, typer.Option(help="Write each person's action segments here (JSON: id, label, start, end, mean_prob; seconds).")
    ] = None,
    timeline: Annotated[
        Path | None, typer.Option(help="Draw the action segments as a timeline picture (.png): one row per person.")
    ] = None,
    min_segment: MinSegmentOpt = 0.5,
    jsonl_keypoints: Annotated[
        bool,
        typer.Option("--jsonl-keypoints", metavar="", help="Add each person's 17 keypoints (x, y pixels) and their scores to the JSONL."),
    ] = False,
    alert: AlertOpt = None,
    rules: RulesOpt = None,
    zone: ZoneOpt = None,
    events: Annotated[
        Path | None, typer.Option("--events", help="Write one JSON line per alert event here (.jsonl; needs --alert or --rules).")
    ] = None,
    show: ShowOpt = True,
    realtime: Annotated[
        bool, typer.Option("--realtime", metavar="", help="Play a file at its own frame rate, as a camera (stale frames dropped).")
    ] = False,
    privacy: PrivacyOpt = "off",
) -> None:
    """Run the live pipeline: YOLO-pose -> tracker -> per-person buffers -> ActionLSTM -> Top-5 overlay."""
    from pipeline.outputs import source_outputs
    from pipeline.privacy import check_privacy
    from pipeline.recognizer import ActionRecognizer
    from pipeline.rules import read_rules
    from pipeline.run import run_sources
    from pipeline.sources import check_source
    from pipeline.zones import check_zones, read_zones

    check_privacy(privacy)
    found_rules, zones = read_rules(alert, rules), read_zones(zone, rules)
    if events is not None and not found_rules:
        raise UserError("--events writes alert events: give the rules with --alert or --rules")
    if zones and not found_rules:
        raise UserError("zones keep alerts quiet: give the rules with --alert or --rules")
    check_zones(zones, sources=[str(k) for k in range(len(source))])  # a run's sources are named by their index
    outputs = source_outputs(source, save=save, jsonl=jsonl, segments=segments, timeline=timeline, events=events)
    for spec in source:
        check_source(spec)
    recognizer = ActionRecognizer(settings, privacy=privacy)
    alerts = recognizer.alerts(found_rules, zones) if found_rules else None
    summaries = run_sources(source, recognizer, outputs, show, realtime, jsonl_keypoints, min_segment, alerts)
    if exit_code := max(summary.exit_code for summary in summaries):  # interrupted, not finished: the shell's codes say so
        raise typer.Exit(exit_code)


@command
def record(
    label: Annotated[str, typer.Argument(help="The action performed; clips go to OUT/LABEL.")],
    out: Annotated[Path, typer.Option("--out", help="Folder of training videos, one subfolder per action.")],
    source: Annotated[str, typer.Option("--source", help="Webcam index (0), video file, or stream URL.")] = "0",
    clips: Annotated[int, typer.Option(min=1, help="Number of clips to record.")] = 10,
    seconds: Annotated[float, typer.Option(help="Length of each clip in seconds.")] = 4.0,
    countdown: Annotated[float, typer.Option(help="Seconds of countdown before each clip (not saved).")] = 3.0,
    show: Annotated[bool, typer.Option("--show/--no-show", metavar="", help="Show a preview with the live skeleton.")] = True,
    pose_model: PoseModelOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Record training clips of one action: countdown, record, save as OUT/LABEL/<time>.mp4, repeat; q stops.
    The preview's skeletons come from the pose stage `extract` uses (--pose-model, --device)."""
    from pipeline.display import Display
    from pipeline.record import check_label, record_clips, recording_summary
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
    stages = PoseSettings(pose_model=pose_model, device=device).build() if display.enabled else None
    try:
        # Recording is real time, so a file is played at its own rate as a camera would deliver it.
        with open_source(source, realtime=True) as frames:
            shape = f"{frames.size[0]}x{frames.size[1]} at {frames.fps:.1f} fps"
            every = f"{clips} clip{'s' if clips != 1 else ''} of {seconds:g} s"
            stops = " (q in the window stops)" if display.enabled else ""
            console.err.print(f"source {escape(redact(source))}: {shape}; {every} into {escape(str(folder))}{stops}")
            recording = record_clips(frames, label, out, clips, seconds, countdown, display, stages)
    finally:
        display.close()
    console.out.print(escape(recording_summary(recording, label, folder)), soft_wrap=True)
    if recording.exit_code:  # interrupted, not finished: the shell's codes say so
        raise typer.Exit(recording.exit_code)


@command
def timeline(
    jsonl: Annotated[Path, typer.Argument(help="The --jsonl output of an earlier `actionlstm run`.")],
    out: Annotated[Path, typer.Option("--out", help="The picture to write (.png, .svg, .pdf or .jpg).")],
    segments: Annotated[Path | None, typer.Option(help="Also write the segments as JSON here.")] = None,
    min_segment: MinSegmentOpt = 0.5,
) -> None:
    """Who did what, when: a timeline picture (one row per person) of an earlier run's JSONL."""
    from pipeline.outputs import check_run_outputs, write_segments, write_timeline
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
