"""One run of the pipeline over one source or several side by side: per source a window, saved video,
JSONL and summary; one progress bar.

The run ends at the end of a file, when a live source gives up, on q / Esc in the window, or on
Ctrl-C / SIGTERM; each of these leaves the video playable and the JSONL complete up to the last
frame. Any other failure (a failed write included) removes the partial outputs. Nothing here grows
with the length of the run: a day at 30 fps keeps the same few kilobytes of statistics as a minute.
"""

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from actionlstm import console
from actionlstm.errors import Terminated, interrupt_exit_code
from pipeline.display import WINDOW_TITLE, Display
from pipeline.recognizer import ActionRecognizer
from pipeline.predictor import ActionPipeline, FrameResult
from pipeline.segments import SegmentBuilder, format_segments
from pipeline.outputs import JsonlSink, Output, VideoSink, discard_outputs, finish_outputs
from pipeline.sources import FrameSource
from pipeline.alerts import Alerts


class Reservoir:
    """Count, mean and percentiles of a stream of numbers in fixed memory (reservoir sampling:
    every value has the same chance to be among the `size` kept)."""

    def __init__(self, size: int = 4096, seed: int = 0):
        self.size = size
        self.kept = np.zeros(size, np.float64)
        self.count = 0
        self.total = 0.0
        self._random = random.Random(seed)

    def add(self, value: float) -> None:
        if self.count < self.size:
            self.kept[self.count] = value
        else:
            slot = self._random.randrange(self.count + 1)
            if slot < self.size:
                self.kept[slot] = value
        self.count += 1
        self.total += value

    def values(self) -> np.ndarray:
        return self.kept[: min(self.count, self.size)]

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.values(), q)) if self.count else float("nan")


@dataclass
class PersonTally:
    frames: int = 0  # frames the person was tracked in
    top1: Counter = field(default_factory=Counter)  # frames per top-1 label (uncertain frames not counted)
    uncertain: int = 0  # frames labelled, but below the recognizer's min_prob


class PersonLog:
    """Per-person frame counts and top-1 labels: every person in view, plus the `history` others
    seen longest. Ids seen once in a day-long run do not pile up."""

    def __init__(self, history: int = 200):
        self.history = history
        self.persons: dict[int, PersonTally] = {}
        self.total = 0  # distinct ids ever seen (trackers never reuse an id)

    def add(self, result: FrameResult) -> None:
        for person in result.persons:
            tally = self.persons.get(person.id)
            if tally is None:
                tally = self.persons[person.id] = PersonTally()
                self.total += 1
            tally.frames += 1
            if person.uncertain:
                tally.uncertain += 1
            elif person.top5:
                tally.top1[person.top5[0].label] += 1
        if len(self.persons) > self.history + len(result.persons):
            in_view = {p.id for p in result.persons}
            gone = min((t for t in self.persons if t not in in_view), key=lambda t: self.persons[t].frames)
            del self.persons[gone]

    def longest(self, n: int) -> list[tuple[int, PersonTally]]:
        return sorted(self.persons.items(), key=lambda item: (-item[1].frames, item[0]))[:n]


@dataclass
class RunSummary:
    frames: int = 0
    seconds: float = 0.0
    skipped: int = 0
    dropped: int = 0
    ended_by: str = "end of source"
    exit_code: int = 0  # 130 after Ctrl-C, 143 after SIGTERM: the run did not end by itself
    warning: str = ""  # a problem with the source worth telling (a truncated file)
    persons: PersonLog = field(default_factory=PersonLog)
    segments: list[dict] = field(default_factory=list)  # per person, runs of one action (see pipeline.segments)
    events: int | None = None  # alert events fired (see service.alerts); None when no rule was given
    duration: float = 0.0  # seconds of source time covered: the last frame's time plus one frame
    stage_seconds: Counter = field(default_factory=Counter)  # per stage, summed over frames
    frame_seconds: Reservoir = field(default_factory=Reservoir)  # per frame: decode start to outputs written
    live_latency: Reservoir = field(default_factory=Reservoir)  # live sources: capture to outputs written

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class SourceRun:
    """One source's part of a run: its video, JSONL and events outputs, window, statistics and segments."""

    def __init__(
        self, source: FrameSource, save: Path | None, jsonl: Path | None, show: bool, jsonl_keypoints: bool, min_segment: float, title: str,
        events: Path | None = None, alerts: Alerts | None = None, name: str = "0",
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
            self.video = VideoSink(save, source.fps, live=source.is_live) if save else None
            self.outputs += [self.video] if self.video else []
            self.records = JsonlSink(jsonl) if jsonl else None
            self.outputs += [self.records] if self.records else []
            self.events = JsonlSink(events) if events else None
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
        if self.video is not None:
            self.video.write(result.image, result.time)
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
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    bar = Progress(*columns, console=console.err, disable=not progress)
    started = time.perf_counter()
    try:
        try:
            with bar:
                names = ["live" if s.is_live else "video" for s in sources]
                tasks = [bar.add_task(name if len(sources) == 1 else f"{name} #{k}", total=s.frame_count, status="") for k, (name, s) in enumerate(zip(names, sources))]
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
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (see actionlstm.errors.Terminated)
            for run in runs:
                run.summary.ended_by = "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"
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


def print_summary(summary: RunSummary, out: Console = console.out, top: int = 10, outputs: dict[str, Path | None] | None = None) -> None:
    """Frames, rate and how the run ended; the persons seen longest with their dominant actions."""
    extra = []
    if summary.skipped:
        extra.append(f"{summary.skipped} unreadable frames skipped")
    if summary.dropped:
        extra.append(f"{summary.dropped} stale live frames dropped")
    out.print(f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), ended by {summary.ended_by}" + (f"; {', '.join(extra)}" if extra else ""))
    if summary.events is not None:
        out.print(f"{summary.events} alert event{'s' if summary.events != 1 else ''}")
    if summary.warning:
        out.print(f"[yellow]warning:[/] {escape(summary.warning)}", soft_wrap=True)
    log = summary.persons
    if log.total:
        shown = log.longest(top)
        more = f" ({len(shown)} seen longest below)" if log.total > len(shown) else ":"
        out.print(f"{log.total} person{'s' if log.total != 1 else ''} seen{more}")
        for track_id, tally in shown:
            if tally.top1:
                label, count = tally.top1.most_common(1)[0]
                action = f"mostly [bold]{escape(label)}[/] ({count} frames)"
            else:
                action = "uncertain throughout" if tally.uncertain else "not long enough in view to classify"
            out.print(f"  #{track_id}: in {tally.frames} frames, {action}")
        if summary.segments:
            out.print("actions over time (per person):")
            for line in format_segments(summary.segments, max_persons=top):
                out.print(f"  {escape(line)}", soft_wrap=True)
    else:
        out.print("nobody was detected")
    for what, path in (outputs or {}).items():
        if path is not None and summary.frames:
            out.print(f"{what}: {escape(str(path))}")
