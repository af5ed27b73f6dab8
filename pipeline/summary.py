"""Numbers a run keeps about itself in fixed memory, and the summary printed at its end: frames,
rate, how it ended, the persons seen longest with their dominant actions and their segments.
Nothing here grows with the length of the run: a day at 30 fps keeps the same few kilobytes as a minute.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape

from actionlstm import console
from pipeline.predictor import FrameResult
from pipeline.segments import format_segments


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
    events: int | None = None  # alert events fired (see pipeline.alerts); None when no rule was given
    duration: float = 0.0  # seconds of source time covered: the last frame's time plus one frame
    stage_seconds: Counter = field(default_factory=Counter)  # per stage, summed over frames
    frame_seconds: Reservoir = field(default_factory=Reservoir)  # per frame: decode start to outputs written
    live_latency: Reservoir = field(default_factory=Reservoir)  # live sources: capture to outputs written

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def print_summary(summary: RunSummary, out: Console | None = None, top: int = 10, outputs: dict[str, Path | None] | None = None) -> None:
    """Frames, rate and how the run ended; the persons seen longest with their dominant actions (to stdout unless `out` says)."""
    out = out or console.out
    extra = []
    if summary.skipped:
        extra.append(f"{summary.skipped} unreadable frames skipped")
    if summary.dropped:
        extra.append(f"{summary.dropped} stale live frames dropped")
    out.print(
        f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), ended by {summary.ended_by}"
        + (f"; {', '.join(extra)}" if extra else "")
    )
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
