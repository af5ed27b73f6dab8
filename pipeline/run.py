"""`actionlstm run`: the pipeline over one source or several side by side, each with its window, its
outputs (video, JSONL, events, segments, timeline) and its summary, under one progress bar.

The run ends at the end of a file, when a live source gives up, on q / Esc in the window, or on
Ctrl-C / SIGTERM; each of these leaves the video playable and the JSONL complete up to the last
frame. Any other failure (a failed write included) removes the partial outputs.
"""

import time
from pathlib import Path

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from actionlstm import console
from actionlstm.errors import interrupt_exit_code, interrupt_name, interrupts_held
from pipeline.alerts import Alerts
from pipeline.display import WINDOW_TITLE, Display
from pipeline.outputs import STDOUT, JsonlOutput, Output, VideoOutput, discard_outputs, finish_outputs, write_segments, write_timeline
from pipeline.predictor import ActionPipeline, FrameResult
from pipeline.recognizer import ActionRecognizer
from pipeline.segments import SegmentBuilder
from pipeline.sources import FrameSource, redact
from pipeline.summary import RunSummary, print_summary


class SourceRun:
    """One source's part of a run: its video, JSONL and events outputs, window, statistics and segments."""

    def __init__(
        self,
        source: FrameSource,
        save: Path | None,
        jsonl: Path | None,
        show: bool,
        jsonl_keypoints: bool,
        min_segment: float,
        title: str,
        events: Path | None = None,
        alerts: Alerts | None = None,
        name: str = "0",
    ):
        self.source = source
        self.summary = RunSummary()
        self.segments = SegmentBuilder(min_segment)
        self.jsonl_keypoints = jsonl_keypoints
        self.alerts = alerts
        self.name = name
        if alerts is not None:
            self.summary.events = 0
        # Wall-clock time of source time 0, for the events' ISO times (a file counts from now).
        self.origin = time.time() - (time.monotonic() - source.started if source.is_live else 0.0)
        self.outputs: list[Output] = []
        try:
            self.video = VideoOutput(save, source.fps, live=source.is_live) if save else None
            self.outputs += [self.video] if self.video else []
            self.records = JsonlOutput(jsonl) if jsonl else None
            self.outputs += [self.records] if self.records else []
            self.events = JsonlOutput(events) if events else None
            self.outputs += [self.events] if self.events else []
        except BaseException:
            discard_outputs(self.outputs)
            raise
        self.display = Display(show, title)

    def add(self, result: FrameResult, step_start: float) -> bool:
        """Record and show one frame's result; False when the user asked to quit in the window."""
        summary = self.summary
        summary.frames += 1
        summary.persons.add(result)
        summary.duration = result.time + 1.0 / self.source.fps
        summary.segments += self.segments.add(result.time, [p.to_json() for p in result.persons])
        encode_start = time.perf_counter()
        with interrupts_held():  # the video and the JSONL hold the same frames, however a run is stopped
            if self.video is not None:
                self.video.write(result.image, result.time, result.frame)
            if self.records is not None:
                self.records.write(result.to_json(keypoints=self.jsonl_keypoints))
            if self.alerts is not None:
                for event in self.alerts.update(result, self.name, self.origin):
                    summary.events += 1
                    if self.events is not None:
                        self.events.write(event.to_json())
        now = time.perf_counter()
        summary.stage_seconds.update({**result.timings, "encode": now - encode_start})
        summary.frame_seconds.add(now - step_start)
        if self.source.is_live:
            summary.live_latency.add(time.monotonic() - self.source.started - result.time)
        return self.display.show(result.image)

    def finish(self, seconds: float) -> None:
        """Complete the statistics and publish the outputs (a run without a frame keeps what was there)."""
        summary = self.summary
        summary.seconds = seconds
        summary.segments = sorted(summary.segments + self.segments.finish(), key=lambda s: (s["id"], s["start"]))
        summary.skipped, summary.dropped = self.source.skipped, self.source.dropped
        summary.warning = self.source.warning
        if summary.frames:
            finish_outputs(self.outputs)
        else:
            discard_outputs(self.outputs)


def frame_progress(enabled: bool = True) -> Progress:
    """The bar long work over frames shows on stderr: one task per source (frames done of its count)
    with a `status` field the caller fills in."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console.err, disable=not enabled)


def run_session(
    pipeline: ActionRecognizer | ActionPipeline,
    source: FrameSource,
    save: Path | None = None,
    jsonl: Path | None = None,
    show: bool = True,
    progress: bool = True,
    jsonl_keypoints: bool = False,
    min_segment: float = 0.5,
    events: Path | None = None,
    alerts: Alerts | None = None,
) -> RunSummary:
    """A run over one source; see `run_sessions`."""
    return run_sessions(pipeline, [source], [save], [jsonl], show, progress, jsonl_keypoints, min_segment, [events], alerts)[0]


def run_sessions(
    pipeline: ActionRecognizer | ActionPipeline,
    sources: list[FrameSource],
    saves: list[Path | None],
    jsonls: list[Path | None],
    show: bool = True,
    progress: bool = True,
    jsonl_keypoints: bool = False,
    min_segment: float = 0.5,
    events: list[Path | None] | None = None,
    alerts: Alerts | None = None,
) -> list[RunSummary]:
    """A run over several sources side by side (`ActionPipeline.stream_many`), each with its own
    outputs, window and summary. q / Esc in any window, Ctrl-C or SIGTERM end them all. With
    `alerts`, each source's events (named by its index) go to its `events` file."""
    stages = pipeline.pipeline if isinstance(pipeline, ActionRecognizer) else pipeline
    runs: list[SourceRun] = []
    try:
        for k, (source, save, jsonl, events_file) in enumerate(zip(sources, saves, jsonls, events or [None] * len(sources))):
            title = WINDOW_TITLE if len(sources) == 1 else f"{WINDOW_TITLE} #{k}"
            runs.append(SourceRun(source, save, jsonl, show, jsonl_keypoints, min_segment, title, events_file, alerts, str(k)))
    except BaseException:
        for run in runs:
            discard_outputs(run.outputs)
        raise
    bar = frame_progress(progress)
    started = time.perf_counter()
    try:
        try:
            with bar:
                names = ["live" if s.is_live else "video" for s in sources]
                tasks = [
                    bar.add_task(name if len(sources) == 1 else f"{name} #{k}", total=s.frame_count, status="")
                    for k, (name, s) in enumerate(zip(names, sources))
                ]
                step_start = time.perf_counter()
                for results in stages.stream_many(sources):
                    quit = False
                    for result in results:
                        quit |= not runs[result.source].add(result, step_start)
                        bar.update(tasks[result.source], advance=1, status=f"{result.fps:4.1f} fps, {len(result.persons)} persons")
                    if quit:
                        for run in runs:
                            run.summary.ended_by = "quit"
                        break
                    step_start = time.perf_counter()
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (see actionlstm.errors)
            for run in runs:
                run.summary.ended_by = interrupt_name(stop)
                run.summary.exit_code = interrupt_exit_code(stop)
        finally:
            for run in runs:
                run.display.close()
        seconds = time.perf_counter() - started
        for run in runs:
            run.finish(seconds)
    except BaseException:
        for run in runs:
            discard_outputs(run.outputs)
        raise
    return [run.summary for run in runs]


def run_sources(
    specs: list[str],
    recognizer: ActionRecognizer,
    outputs: list[dict[str, Path | None]],
    show: bool,
    realtime: bool,
    jsonl_keypoints: bool = False,
    min_segment: float = 0.5,
    alerts: Alerts | None = None,
) -> list[RunSummary]:
    """`actionlstm run SRC...` after its checks: open the sources (after the pose model has loaded: a
    live source opened earlier would run on without us), say what runs on what, run them side by
    side with each source's `outputs` (`pipeline.outputs.source_outputs`), and print each one's summary."""
    pose = recognizer.pipeline.pose
    with recognizer.open_many(specs, realtime=realtime) as sources:
        for k, (spec, source) in enumerate(zip(specs, sources)):
            number = f"#{k} " if len(specs) > 1 else ""
            live = "live " if source.is_live else ""
            console.err.print(
                f"{number}{live}source {escape(redact(spec))}: {source.size[0]}x{source.size[1]} at {source.fps:.1f} fps", soft_wrap=True
            )
        console.err.print(f"pose model {Path(pose.weights).name} ({pose.backend}) on {recognizer.device}", soft_wrap=True)
        console.err.print(f"action model {escape(recognizer.checkpoint.name)}: {escape(recognizer.classifier.describe())}", soft_wrap=True)
        if recognizer.classifier.synthetic:
            console.err.print(
                "[bold yellow]warning:[/] this model learnt generated movements (`actionlstm sample`), not real actions: "
                "its labels are placeholders. Train on your own videos or ucf101_2d.pkl for real ones.",
                soft_wrap=True,
            )
        for rule in alerts.rules if alerts is not None else []:
            console.err.print(f"alert rule {escape(str(rule))}")
        for zone in alerts.zones if alerts is not None else []:
            console.err.print(f"zone {escape(str(zone))}", soft_wrap=True)
        summaries = run_sessions(
            recognizer,
            sources,
            [o["save"] for o in outputs],
            [o["jsonl"] for o in outputs],
            show=show,
            jsonl_keypoints=jsonl_keypoints,
            min_segment=min_segment,
            events=[o.get("events") for o in outputs],
            alerts=alerts,
        )
    for k, (spec, summary, files) in enumerate(zip(specs, summaries, outputs)):
        if summary.frames and files["segments"] is not None:
            write_segments(summary.segments, files["segments"])
        if summary.frames and files["timeline"] is not None:
            write_timeline(summary.segments, files["timeline"], summary.duration, redact(spec))
        out = console.err if files["jsonl"] == STDOUT else console.out  # stdout carries the JSONL
        if len(specs) > 1:
            out.print(f"[bold]#{k} {escape(redact(spec))}[/]", soft_wrap=True)
        shown = {"video": files["save"], "predictions": files["jsonl"], "segments": files["segments"], "timeline": files["timeline"]}
        print_summary(summary, out=out, outputs={**shown, "events": files.get("events")})
    return summaries
