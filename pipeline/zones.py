"""Zones: a polygon in a source's frame where given labels fire no alert (the bed, the sofa), since no
model is right in every room and the person deploying it knows where lying down is expected.

    --zone 'bed=fall,down:0.1,0.5 0.6,0.5 0.6,0.9 0.1,0.9'     every source; fractions of the frame
    --zone 'kitchen/sofa=fall:40,300 400,300 400,470 40,470'   the source named kitchen only; pixels

`[SOURCE/]NAME=LABEL[,LABEL...]:X,Y X,Y X,Y...`: the labels are the model's classes, `down` (the
down rule, `pipeline.rules`) or `*` (every rule). Coordinates that all lie within [0, 1] are
fractions of the frame's width and height, so one zone fits a camera at any resolution; otherwise
they are pixels. In a rules file they go in a list `zones` (`load_zones`).

A person is in a zone by the bottom centre of their box, as in Frigate: where they stand, sit or lie
on the floor plane, not where their body happens to cover the picture (someone standing in front of
the bed covers it with their hips, not with their feet). Unlike the joints, the box is known for
someone out of sight too (the one they were last seen in), so a fall on the bed stays quiet when the
pose model loses the person lying there.
"""

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from actionlstm.errors import UserError
from pipeline.rules import ANY, check_keys, file_number, read_rules_file

_ZONE = re.compile(r"^(?:(?P<source>[A-Za-z0-9_-]{1,32})/)?(?P<name>[^=/:]+)=(?P<labels>[^:]+):(?P<points>.*)$")
SYNTAX = "[SOURCE/]NAME=LABEL[,LABEL...]:X,Y X,Y X,Y... (e.g. 'bed=fall:0.1,0.5 0.6,0.5 0.6,0.9 0.1,0.9')"

Point = tuple[float, float]


def inside(point: Point, polygon: Iterable[Point]) -> bool:
    """Whether `point` lies inside `polygon` (any simple polygon, convex or not) or on its edge, by the
    even-odd rule: a ray from the point to the right crosses the edges an odd number of times. The
    edge counts as inside, so a zone drawn to the frame's border holds a box that touches it."""
    x, y = point
    corners = list(polygon)
    crossed = False
    for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1]):
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        if (
            abs(cross) <= 1e-9 * max(abs(x2 - x1) + abs(y2 - y1), 1.0)
            and min(x1, x2) <= x <= max(x1, x2)
            and min(y1, y2) <= y <= max(y1, y2)
        ):
            return True
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            crossed = not crossed
    return crossed


@dataclass(frozen=True)
class Zone:
    """Where `labels` fire no alert, in one source (`source`) or in every one (None)."""

    name: str
    labels: tuple[str, ...]
    points: tuple[Point, ...]
    source: str | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise UserError(f"zone '{self}': a zone needs a name")
        if not self.labels or any(not label.strip() for label in self.labels):
            raise UserError(f"zone {self.name}: name the labels it keeps quiet (a class, down, or * for every one)")
        if len(self.points) < 3:
            raise UserError(f"zone {self.name}: a polygon needs 3 points or more, not {len(self.points)}")
        if not all(math.isfinite(v) and v >= 0 for point in self.points for v in point):
            raise UserError(f"zone {self.name}: coordinates are pixels or fractions of the frame, 0 or more")

    @property
    def fractions(self) -> bool:
        """Whether the points are fractions of the frame (all within [0, 1]) rather than pixels."""
        return all(v <= 1.0 for point in self.points for v in point)

    def covers(self, label: str, box: list[float], size: tuple[int, int]) -> bool:
        """Whether an alert for `label` of a person boxed `box` (x1, y1, x2, y2 pixels) in a frame of
        `size` (width, height) is kept quiet here: the label is one of the zone's and the box's bottom
        centre lies inside."""
        if ANY not in self.labels and label not in self.labels:
            return False
        x, y = (box[0] + box[2]) / 2, box[3]
        if self.fractions:
            x, y = x / max(size[0], 1), y / max(size[1], 1)
        return inside((x, y), self.points)

    def __str__(self) -> str:
        where = "" if self.source is None else f"{self.source}/"
        return f"{where}{self.name}={','.join(self.labels)}:" + " ".join(f"{x:g},{y:g}" for x, y in self.points)


def _coordinate(text: str, zone: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"zone '{zone}': '{text}' is not a number; zones look like {SYNTAX}") from None


def parse_zone(text: str) -> Zone:
    """A zone as `--zone` takes it (see the module)."""
    match = _ZONE.match(text.strip())
    if match is None:
        raise UserError(f"zone '{text}' is not {SYNTAX}")
    points = []
    for pair in match["points"].split():
        xy = pair.split(",")
        if len(xy) != 2:
            raise UserError(f"zone '{text}': '{pair}' is not one X,Y point; zones look like {SYNTAX}")
        points.append((_coordinate(xy[0], text), _coordinate(xy[1], text)))
    labels = tuple(label.strip() for label in match["labels"].split(","))
    return Zone(match["name"].strip(), labels, tuple(points), match["source"])


def _zone_from_entry(entry: object, where: str) -> Zone:
    if isinstance(entry, str):
        return parse_zone(entry)
    if not isinstance(entry, dict):
        raise UserError(f"{where}: a zone is a string like --zone takes or a table with name, labels, points (and source)")
    check_keys(entry, ("name", "labels", "points", "source"), where, "a zone")
    name, labels, points, source = entry.get("name"), entry.get("labels"), entry.get("points"), entry.get("source")
    if not isinstance(name, str) or not (source is None or isinstance(source, str)):
        raise UserError(f"{where}: a zone's name (and source) are strings")
    if isinstance(labels, str):
        labels = [labels]
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise UserError(f"{where}: labels is a list of label names")
    if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
        raise UserError(f"{where}: points is a list of [x, y] pairs of numbers")
    xy = tuple((file_number(x, "a point's x", where), file_number(y, "a point's y", where)) for x, y in points)
    return Zone(name, tuple(labels), xy, source)


def load_zones(path: Path) -> list[Zone]:
    """The zones of a rules file (YAML or TOML, `pipeline.rules.load_rules`): a list `zones` beside
    `alerts`, whose entries are zone strings or tables:

        zones:                                            [[zones]]
          - name: bed                                     name = "bed"
            source: bedroom      # left out: every one    labels = ["fall", "down"]
            labels: [fall, down]                          points = [[0.1, 0.5], [0.6, 0.5], [0.6, 0.9]]
            points: [[0.1, 0.5], [0.6, 0.5], [0.6, 0.9]]
    """
    data = read_rules_file(path)
    entries = data.get("zones", []) if isinstance(data, dict) else []
    if not isinstance(entries, list):
        raise UserError(f"{path}: 'zones' is a list of zones")
    return [_zone_from_entry(entry, f"{path}, zone {k + 1}") for k, entry in enumerate(entries)]


def read_zones(texts: list[str] | None, path: Path | None) -> list[Zone]:
    """The zones of `--zone` (`texts`) and of `--rules FILE` (`path`), parsed (and so refused) before any model loads."""
    return [parse_zone(text) for text in texts or []] + (load_zones(path) if path is not None else [])


def check_zones(zones: list[Zone], labels: list[str] | None = None, sources: list[str] | None = None) -> None:
    """Refuse a zone for a label no rule could fire (`labels`: the model's classes, with `down`
    where the model has a down state) or for a source the run has not (`sources`, by name): it
    would never keep anything quiet, so say so at start."""
    for zone in zones:
        for label in zone.labels if labels is not None else ():
            if label != ANY and label not in labels:
                known = ", ".join([*labels[:12], *(["..."] if len(labels) > 12 else [])])
                raise UserError(f"zone {zone.name}: the model has no label '{label}' (it has {known}; * is every label)")
        if sources is not None and zone.source is not None and zone.source not in sources:
            raise UserError(f"zone {zone.name}: there is no source '{zone.source}' (the sources: {', '.join(sources)})")
