"""A picture of who did what when: one row per person, a coloured bar per action segment.

Drawn on a bare `Figure` (Agg canvas, no pyplot), so it works without a display and leaves no
global figure state behind in a long-running process.
"""

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from actionlstm.atomic import atomic_path

ROW_INCHES = 0.35  # height of one person's row
MAX_HEIGHT_INCHES = 14.0  # beyond about 35 persons rows get thinner instead of the picture taller
BAR_HEIGHT = 0.8  # of a row
FIGURE_WIDTH_INCHES = 11.0
AXES_WIDTH_INCHES = 8.5  # about what the plot keeps of the width beside the ticks and the legend
CHAR_INCHES = 0.065  # width of a character of a bar's name at its font size


def label_colours(labels: Iterable[str]) -> dict[str, tuple]:
    """One colour per label, the same for every person; qualitative palettes while they last."""
    names = sorted(set(labels))
    if len(names) <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return {name: cmap(i) for i, name in enumerate(names)}
    if len(names) <= 20:
        cmap = matplotlib.colormaps["tab20"]
        return {name: cmap(i) for i, name in enumerate(names)}
    cmap = matplotlib.colormaps["turbo"]
    return {name: cmap(i / (len(names) - 1)) for i, name in enumerate(names)}


def draw_timeline(segments: Iterable[Mapping], out_path: Path, duration: float | None = None, title: str = "") -> Figure:
    """Draw `segments` ({"id", "label", "start", "end"}, seconds) and write the picture to `out_path`
    atomically (PNG unless the suffix names another format matplotlib writes). Rows are persons in id
    order, top to bottom; the time axis runs from 0 to `duration` (default: the last segment's end).
    Returns the figure, so callers and tests can read its axes."""
    segments = sorted(segments, key=lambda s: (s["id"], s["start"]))
    persons = sorted({s["id"] for s in segments})
    row_of = {person: row for row, person in enumerate(persons)}
    colours = label_colours(s["label"] for s in segments)

    height = min(MAX_HEIGHT_INCHES, 1.5 + ROW_INCHES * max(len(persons), 1))
    fig = Figure(figsize=(FIGURE_WIDTH_INCHES, height))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    end = max(duration if duration is not None else max((s["end"] for s in segments), default=0.0), 1e-3)
    inches_per_second = AXES_WIDTH_INCHES / end
    for segment in segments:
        row, width, colour = row_of[segment["id"]], segment["end"] - segment["start"], colours[segment["label"]]
        ax.barh(row, width, left=segment["start"], height=BAR_HEIGHT, color=colour, edgecolor="none")
        # Named on the bar where the name fits: with many labels neighbouring colours look alike.
        if len(segment["label"]) * CHAR_INCHES < width * inches_per_second - 0.1:
            ink = "white" if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] < 0.5 else "black"
            ax.text(segment["start"] + width / 2, row, segment["label"], ha="center", va="center", fontsize=7, color=ink)
    ax.set_xlim(0, end)
    ax.set_ylim(max(len(persons), 1) - 0.5, -0.5)  # the first person on top
    font = 9 if len(persons) <= 30 else 6
    ax.set_yticks(range(len(persons)), [f"#{person}" for person in persons], fontsize=font)
    ax.set_xlabel("time (seconds)")
    ax.set_ylabel("person")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title)
    if not segments:
        ax.text(0.5, 0.5, "no labelled actions", transform=ax.transAxes, ha="center", va="center", color="grey")
    if colours:
        handles = [Patch(color=colour, label=label) for label, colour in colours.items()]
        rows_that_fit = max(1, int(height / 0.25))  # legend entries per column at its font size
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
            ncol=math.ceil(len(handles) / rows_that_fit),
            title="action",
        )
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format=out_path.suffix[1:].lower() or "png")
    return fig
