"""One run of the pipeline over a source: window, saved video, JSONL, progress bar and summary.

The run ends at the end of a file, when a live source gives up, on q / Esc in the window, or on
Ctrl-C; each of these leaves the video playable and the JSONL complete up to the last frame. Any
other failure removes the partial outputs.
"""

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from actionlstm import console
from pipeline.display import Display
from pipeline.runner import ActionPipeline
from pipeline.sinks import JsonlSink, VideoSink
from pipeline.sources import FrameSource

@dataclass
class RunSummary:
    frames: int = 0
    seconds: float = 0.0
    skipped: int = 0
    dropped: int = 0
    ended_by: str = "end of source"
    top1_counts: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))
    frames_seen: Counter = field(default_factory=Counter)
    stage_seconds: Counter = field(default_factory=Counter)  # per stage, summed over frames
    frame_seconds: list[float] = field(default_factory=list)  # per frame: decode start to outputs written
    live_latency: list[float] = field(default_factory=list)  # live sources: capture to outputs written

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def dominant_actions(self) -> dict[int, tuple[str, int]]:
        """Per person: the label that was top-1 most often, and in how many frames."""
        return {tid: counts.most_common(1)[0] for tid, counts in self.top1_counts.items() if counts}


def run_session(
    pipeline: ActionPipeline,
    source: FrameSource,
    save: Path | None = None,
    jsonl: Path | None = None,
    show: bool = True,
    progress: bool = True,
) -> RunSummary:
    summary = RunSummary()
    video = VideoSink(save, source.fps, source.size) if save else None
    try:
        records = JsonlSink(jsonl) if jsonl else None
    except BaseException:
        if video is not None:
            video.discard()
        raise
    display = Display(show)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    bar = Progress(*columns, console=console.err, disable=not progress)
    started = time.perf_counter()
    try:
        with bar:
            task = bar.add_task("live" if source.is_live else "video", total=source.frame_count, status="")
            frame_start = time.perf_counter()
            for result in pipeline.stream(source):
                summary.frames += 1
                for person in result.persons:
                    summary.frames_seen[person.track_id] += 1
                    if person.top5:
                        summary.top1_counts[person.track_id][person.top5[0].label] += 1
                encode_start = time.perf_counter()
                if video is not None:
                    video.write(result.image)
                if records is not None:
                    records.write(result.to_json())
                now = time.perf_counter()
                summary.stage_seconds.update({**result.timings, "encode": now - encode_start})
                summary.frame_seconds.append(now - frame_start)
                if source.is_live:
                    summary.live_latency.append(time.monotonic() - result.timestamp)
                bar.update(task, advance=1, status=f"{result.fps:4.1f} fps, {len(result.persons)} persons")
                if not display.show(result.image):
                    summary.ended_by = "quit"
                    break
                frame_start = time.perf_counter()
    except KeyboardInterrupt:
        summary.ended_by = "Ctrl-C"
    except BaseException:
        for sink in (video, records):
            if sink is not None:
                sink.discard()
        raise
    finally:
        display.close()
    summary.seconds = time.perf_counter() - started
    summary.skipped, summary.dropped = source.skipped, source.dropped
    for sink in (video, records):
        if sink is not None:
            if summary.frames:
                sink.finish()
            else:  # a run that processed no frame has nothing to show: keep what was there before
                sink.discard()
    return summary


def print_summary(summary: RunSummary, save: Path | None, jsonl: Path | None) -> None:
    out = console.out
    extra = []
    if summary.skipped:
        extra.append(f"{summary.skipped} unreadable frames skipped")
    if summary.dropped:
        extra.append(f"{summary.dropped} stale live frames dropped")
    out.print(f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), ended by {summary.ended_by}" + (f"; {', '.join(extra)}" if extra else ""))
    dominant = summary.dominant_actions()
    if summary.frames_seen:
        out.print(f"{len(summary.frames_seen)} persons seen:")
        for tid in sorted(summary.frames_seen):
            action, count = dominant.get(tid, ("(not enough frames to classify)", 0))
            share = f" ({count} frames)" if count else ""
            out.print(f"  #{tid}: in {summary.frames_seen[tid]} frames, mostly [bold]{action}[/]{share}")
    else:
        out.print("nobody was detected")
    for label, path in (("video", save), ("predictions", jsonl)):
        if path is not None and summary.frames:
            out.print(f"{label}: {path}")
