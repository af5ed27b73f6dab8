"""The timeline picture, checked through its axes (rows, ticks, bars, legend), not its pixels."""

import cv2
import pytest

from pipeline.timeline import draw_timeline


def bars_by_row(ax) -> dict[int, list[tuple[float, float]]]:
    """(start, end) of every bar, grouped by the row (y centre) it sits on."""
    rows: dict[int, list[tuple[float, float]]] = {}
    for bar in ax.patches:
        rows.setdefault(round(bar.get_y() + bar.get_height() / 2), []).append((bar.get_x(), bar.get_x() + bar.get_width()))
    return rows


def test_one_person(tmp_path):
    segments = [
        {"id": 3, "label": "wave", "start": 0.0, "end": 4.2, "mean_prob": 0.91},
        {"id": 3, "label": "clap", "start": 4.2, "end": 9.0, "mean_prob": 0.77},
        {"id": 3, "label": "wave", "start": 10.0, "end": 11.5, "mean_prob": 0.8},
    ]
    out = tmp_path / "timeline.png"
    ax = draw_timeline(segments, out, title="run").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["#3"]
    assert bars_by_row(ax) == {0: [pytest.approx((0.0, 4.2)), pytest.approx((4.2, 9.0)), pytest.approx((10.0, 11.5))]}
    assert ax.patches[0].get_facecolor() == ax.patches[2].get_facecolor() != ax.patches[1].get_facecolor()
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["clap", "wave"]
    assert sorted(t.get_text() for t in ax.texts) == ["clap", "wave", "wave"]  # wide bars carry their name
    assert "seconds" in ax.get_xlabel()
    assert ax.get_xlim() == pytest.approx((0.0, 11.5))
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 50
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.png"]  # nothing temporary left behind


def test_twenty_persons_with_many_labels(tmp_path):
    labels = [f"action{k:02d}" for k in range(25)]
    segments = []
    for person in range(20):
        for k in range(person % 4 + 1):  # person p has p % 4 + 1 segments of 2 s each
            segments.append(
                {"id": 100 + person, "label": labels[(person + k) % 25], "start": 2.0 * k, "end": 2.0 * k + 2.0, "mean_prob": 0.5}
            )
    out = tmp_path / "many.png"
    fig = draw_timeline(segments, out, duration=60.0)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"#{100 + p}" for p in range(20)]
    rows = bars_by_row(ax)
    assert sorted(rows) == list(range(20))
    for person in range(20):
        assert rows[person] == [pytest.approx((2.0 * k, 2.0 * k + 2.0)) for k in range(person % 4 + 1)]
    distinct = sorted({s["label"] for s in segments})
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == distinct
    assert ax.get_xlim() == pytest.approx((0.0, 60.0))
    one_row = draw_timeline(segments[:1], tmp_path / "one.png").get_size_inches()[1]
    assert one_row < fig.get_size_inches()[1] <= 14.0  # taller with more rows, within bounds
    assert cv2.imread(str(out)) is not None


def test_no_segments_still_makes_a_picture(tmp_path):
    out = tmp_path / "empty.png"
    ax = draw_timeline([], out).axes[0]
    assert len(ax.patches) == 0 and ax.get_legend() is None
    assert cv2.imread(str(out)) is not None
