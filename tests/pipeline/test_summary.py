"""Run statistics stay bounded over a day-long run and still tell the truth about it."""

import io

import numpy as np
from rich.console import Console

from pipeline.actions import LabelProb
from pipeline.predictor import FrameResult, PersonResult
from pipeline.summary import PersonLog, Reservoir, RunSummary, print_summary


def _frame(index: int, persons: dict[int, str | None]) -> FrameResult:
    people = [PersonResult(tid, [0, 0, 1, 1], [LabelProb(label, 0.9)] if label else None) for tid, label in persons.items()]
    return FrameResult(index, index / 30, np.zeros((1, 1, 3), np.uint8), people, 30.0)


def test_reservoir_keeps_exact_count_and_mean_and_close_percentiles_in_fixed_memory():
    stat = Reservoir(size=1000, seed=1)
    values = np.random.default_rng(0).permutation(100_000) / 1000.0  # 0 .. 99.999, shuffled
    for v in values:
        stat.add(float(v))
    assert stat.count == 100_000 and stat.kept.size == 1000
    assert np.isclose(stat.mean, values.mean())
    assert abs(stat.percentile(50) - 50.0) < 5.0 and abs(stat.percentile(95) - 95.0) < 3.0


def test_reservoir_below_its_size_is_exact():
    stat = Reservoir(size=10)
    for v in [3.0, 1.0, 2.0]:
        stat.add(v)
    assert sorted(stat.values()) == [1.0, 2.0, 3.0] and stat.percentile(50) == 2.0


def test_person_log_forgets_short_visitors_but_keeps_those_in_view_and_the_longest():
    log = PersonLog(history=5)
    for k in range(200):
        log.add(_frame(2 * k, {1: "walk", 1000: "run" if k % 4 else "walk"}))  # two people there all along
        log.add(_frame(2 * k + 1, {1: "walk", 1000: None, 2 + k: None}))  # and one passer-by per frame
    assert log.total == 202
    assert len(log.persons) <= 5 + 3
    assert log.persons[1].frames == 400 and log.persons[1000].frames == 400
    assert log.persons[1000].top1 == {"run": 150, "walk": 50}
    assert 201 in log.persons  # the one in view in the last frame


def test_summary_lists_the_persons_seen_longest_not_every_id():
    summary = RunSummary(frames=60, seconds=2.0)
    for k in range(60):
        summary.persons.add(_frame(k, {7: "wave", 100 + k: None}))
    text = io.StringIO()
    print_summary(summary, out=Console(file=text, width=200), top=3)
    lines = text.getvalue().splitlines()
    assert lines[0] == "60 frames in 2.0 s (30.0 fps), ended by end of source"
    assert lines[1] == "61 persons seen (3 seen longest below)"
    assert lines[2] == "  #7: in 60 frames, mostly wave (60 frames)"
    assert len(lines) == 5
