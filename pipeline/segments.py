"""Action segments: per person, the stretches of time under one top-1 label.

The live JSONL says what each person looked like at each instant; a summary, a timeline picture or a
record of "who did what when" needs intervals instead. `SegmentBuilder` turns frames into intervals
as they come, holding only each person's open run, so a day-long live run does not grow with time.

Conventions:
- A frame lasts until the next frame of the stream, so a segment's `end` is the time of the frame
  after its last one: at a steady rate, its last frame plus one frame duration (one frame at 10 fps
  lasts 0.1 s). The stream's last frame, and a frame followed by a stall of more than `max_gap`,
  lasts as long as the step before it.
- A frame where a person has no label (top5 null or missing: the buffer is not ready yet) or is
  marked `"uncertain": true` ends their segment; the next labelled frame starts a new one. Nothing
  is joined across such frames: the model did not say what happened there.
- A person absent for more than `max_gap` seconds ends their segment; a shorter absence is bridged
  when they come back under the same label (a missed detection is not a new action).
- Between those breaks, a run of one label shorter than `min_segment` is a flicker: its time goes to
  the steady run before it (or, at the start, to the first steady run after it), and steady runs of
  one label that then meet are joined, so wave, 0.2 s of clap, wave is one wave segment. Where no
  label is held for `min_segment` between two breaks, nothing is reported for that stretch.
- `mean_prob` is the mean top-1 probability over the frames that showed the segment's label
  (a flicker's frames show another label, so they do not count).
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from actionlstm.errors import UserError

EPSILON = 1e-6  # times are rounded to 0.1 ms in the JSONL; durations compare with this slack


@dataclass
class _Run:
    label: str
    start: float
    end: float
    prob_sum: float
    frames: int


@dataclass
class _Person:
    id: int
    last_seen: float
    run: _Run | None = None  # the label being shown now
    segment: _Run | None = None  # the last steady run, still open to flickers and joins
    lead_start: float | None = None  # start of flickers seen before any steady run


def top1(person: Mapping) -> tuple[str, float] | None:
    """The label and probability a JSONL person record shows, or None where it shows none
    (top5 missing, null or empty, or the person marked uncertain)."""
    top5 = person.get("top5")
    if not top5 or person.get("uncertain"):
        return None
    return str(top5[0]["label"]), float(top5[0]["prob"])


class SegmentBuilder:
    """Frames in (`add`), closed segments out, as soon as they are known to be over.

    `add` and `finish` return the segments they close as dicts {"id", "label", "start", "end",
    "mean_prob"} (seconds); the caller keeps or writes them, the builder forgets them.
    """

    def __init__(self, min_segment: float = 0.5, max_gap: float = 1.0):
        if min_segment < 0 or max_gap < 0:
            raise ValueError("min_segment and max_gap must be >= 0")
        self.min_segment = min_segment
        self.max_gap = max_gap
        self._persons: dict[int, _Person] = {}
        self._time: float | None = None
        self._step = 0.0  # the latest time between frames: how long the newest frame lasts

    def add(self, time: float, persons: Iterable[Mapping]) -> list[dict]:
        """One frame: its time in seconds and its persons as JSONL person records ({"id", "top5",
        optional "uncertain"}; `FrameResult.to_json()["persons"]` live). Returns the segments it closed."""
        if self._time is not None and time < self._time:
            raise ValueError(f"frame time {time} is before the previous frame's {self._time}")
        closed: list[dict] = []
        if self._time is not None and self._time < time <= self._time + self.max_gap:
            self._step = time - self._time
            for person in self._persons.values():
                if person.run is not None and person.last_seen == self._time:
                    person.run.end = time  # the previous frame lasted until this one
        seen = set()
        for record in persons:
            person_id = int(record["id"])
            seen.add(person_id)
            person = self._persons.get(person_id)
            if person is not None and time - person.last_seen > self.max_gap:
                closed += self._close(person_id)
                person = None
            shown = top1(record)
            if shown is None:
                if person is not None:
                    closed += self._close(person_id)
                continue
            label, prob = shown
            if person is None:
                person = self._persons[person_id] = _Person(person_id, time)
            if person.run is not None and person.run.label != label:
                closed += self._end_run(person)
            if person.run is None:
                person.run = _Run(label, time, time + self._step, prob, 1)
            else:
                person.run.end = time + self._step
                person.run.prob_sum += prob
                person.run.frames += 1
            person.last_seen = time
        for person_id in [p.id for p in self._persons.values() if p.id not in seen and time - p.last_seen > self.max_gap]:
            closed += self._close(person_id)
        self._time = time
        return closed

    def open_segments(self) -> list[dict]:
        """The segments not closed yet, as they stand now (a live timeline shows them growing): each
        person's last steady run and the label showing since, where that differs."""
        shown = []
        for person in self._persons.values():
            runs = [r for r in (person.segment, person.run) if r is not None]
            if len(runs) == 2 and runs[0].label == runs[1].label:
                runs = [
                    _Run(runs[0].label, runs[0].start, runs[1].end, runs[0].prob_sum + runs[1].prob_sum, runs[0].frames + runs[1].frames)
                ]
            shown += [_as_dict(person.id, run) for run in runs]
        return shown

    def finish(self) -> list[dict]:
        """The end of the stream: close every open segment (by person id) and start afresh."""
        closed = [segment for person_id in sorted(self._persons) for segment in self._close(person_id)]
        self._time, self._step = None, 0.0
        return closed

    def _end_run(self, person: _Person) -> list[dict]:
        """The person's label changed or their piece ended: settle the run that was showing."""
        run, person.run = person.run, None
        if run.end - run.start < self.min_segment - EPSILON:  # a flicker
            if person.segment is not None:
                person.segment.end = run.end
            elif person.lead_start is None:
                person.lead_start = run.start
            return []
        segment = person.segment
        if segment is not None and segment.label == run.label:
            segment.end = run.end
            segment.prob_sum += run.prob_sum
            segment.frames += run.frames
            return []
        if person.lead_start is not None:
            run.start, person.lead_start = person.lead_start, None
        person.segment = run
        return [] if segment is None else [_as_dict(person.id, segment)]

    def _close(self, person_id: int) -> list[dict]:
        person = self._persons.pop(person_id)
        closed = self._end_run(person) if person.run is not None else []
        if person.segment is not None:
            closed.append(_as_dict(person_id, person.segment))
        return closed


def _as_dict(person_id: int, run: _Run) -> dict:
    return {
        "id": person_id,
        "label": run.label,
        "start": round(run.start, 4),
        "end": round(run.end, 4),
        "mean_prob": round(run.prob_sum / run.frames, 4),
    }


def segments_from_records(records: Iterable[Mapping], min_segment: float = 0.5, max_gap: float = 1.0) -> list[dict]:
    """All segments of a sequence of JSONL frame records, ordered by person id, then start."""
    builder = SegmentBuilder(min_segment, max_gap)
    segments = [s for record in records for s in builder.add(float(record["time"]), record["persons"])]
    segments += builder.finish()
    return sorted(segments, key=lambda s: (s["id"], s["start"]))


def _read_records(path: Path) -> Iterable[dict]:
    """The frame records of a JSONL file. A last line that does not parse is the one a killed run was
    writing, so it is skipped; a bad line anywhere else is damage and stops with its line number."""
    pending: tuple[int, str] | None = None
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                if pending is not None:
                    raise UserError(f"{path}:{pending[0]}: {pending[1]}")
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    pending = (number, "not a JSON line")
                    continue
                if (
                    not isinstance(record, dict)
                    or not isinstance(record.get("time"), (int, float))
                    or not isinstance(record.get("persons"), list)
                ):
                    raise UserError(f"{path}:{number}: not a frame record (needs 'time' and 'persons')")
                yield record
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a JSONL file (not UTF-8 text)") from None


def segments_from_jsonl(path: Path, min_segment: float = 0.5, max_gap: float = 1.0) -> list[dict]:
    """The segments of an earlier run's `--jsonl` output (see `segments_from_records`)."""
    return segments_from_records(_read_records(Path(path)), min_segment, max_gap)


def _span(segment: Mapping) -> str:
    return f"{segment['start']:.1f}-{segment['end']:.1f} s {segment['label']} ({segment['mean_prob']:.2f})"


def format_segments(segments: Iterable[Mapping], per_person: int = 6, max_persons: int = 20) -> list[str]:
    """End-of-run summary lines, one per person in id order: "#3: 0.0-4.2 s wave (0.91), 4.2-9.0 s
    clap (0.77)". Long runs are capped to the first `per_person` segments of the first `max_persons`
    persons, with a count of what was left out, so the summary stays a glance."""
    by_person: dict[int, list[Mapping]] = {}
    for segment in sorted(segments, key=lambda s: (s["id"], s["start"])):
        by_person.setdefault(segment["id"], []).append(segment)
    lines = []
    for person_id in list(by_person)[:max_persons]:
        own = by_person[person_id]
        line = f"#{person_id}: " + ", ".join(_span(s) for s in own[:per_person])
        if len(own) > per_person:
            line += f", +{len(own) - per_person} more"
        lines.append(line)
    if len(by_person) > max_persons:
        lines.append(f"+{len(by_person) - max_persons} more persons")
    return lines
