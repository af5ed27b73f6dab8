"""Drawing: skeleton, box and track id per person, a Top-5 panel with probability bars per classified
person, and the fps line.

Sizes follow the frame height so the overlay reads the same at 320x240 and at 1080p. Skeletons and
boxes are drawn first and panels on top, so a panel is never hidden by a person. Panels are placed
by `place_panels`, a pure function of rectangles: no panel covers another panel or the fps line, each
stays inside the frame when it fits, and each starts with its person's `#id`, since in a crowd it
may have to sit away from its person. When not every panel fits with all its lines, every panel
shows its top-1 only; a panel that still finds no free place is left out (its person keeps the
`#id` tag on the box).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from actionlstm.skeleton import LIMBS
from pipeline.actions import LabelProb
from pipeline.tracking import Poses

FONT = cv2.FONT_HERSHEY_SIMPLEX
_PALETTE = [(66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60)]

Rect = tuple[int, int, int, int]  # x, y, width, height in pixels


def track_colour(track_id: int) -> tuple[int, int, int]:
    return _PALETTE[track_id % len(_PALETTE)] if track_id >= 0 else (160, 160, 160)


def _overlap_areas(candidates: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """[K, R] pixels shared by each candidate (x, y, w, h) with each rectangle."""
    if len(rects) == 0:
        return np.zeros((len(candidates), 0))
    c, r = candidates[:, None, :], rects[None, :, :]
    w = np.minimum(c[..., 0] + c[..., 2], r[..., 0] + r[..., 2]) - np.maximum(c[..., 0], r[..., 0])
    h = np.minimum(c[..., 1] + c[..., 3], r[..., 1] + r[..., 3]) - np.maximum(c[..., 1], r[..., 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def place_panels(
    boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]], frame: tuple[int, int], reserved: Sequence[Rect] = (), gap: int = 2
) -> list[Rect | None]:
    """A rectangle for each panel (`sizes[i]` = width, height) of the person in `boxes[i]`, placed in
    that order; None for a panel that finds no free place.

    A panel never intersects an earlier panel or a `reserved` rectangle, and lies inside the `frame`
    (width, height) unless it is bigger than the frame. Among the free places it takes the one
    nearest to the right (or left) of its person's box top that covers the least of anybody's box.
    Candidates are every combination of the frame's edges, the box's sides and the edges of what is
    already placed, so a free place is found whenever one exists: any free place can slide left and
    up until it touches an edge, and is then one of the candidates.
    """
    frame_w, frame_h = frame
    people = np.asarray(boxes, np.int64).reshape(-1, 4)
    taken = [tuple(int(v) for v in r) for r in reserved]
    placed: list[Rect | None] = []
    for (bx, by, bw, bh), (w, h) in zip(people.tolist(), sizes):
        xs = [0, frame_w - w, bx + bw + gap, bx - w - gap, bx, bx + bw - w]
        ys = [0, frame_h - h, by, by + bh + gap, by - h - gap, by + bh - h]
        for rx, ry, rw, rh in taken:
            xs += [rx + rw + gap, rx - w - gap]
            ys += [ry + rh + gap, ry - h - gap]
        xs = np.unique(np.clip(xs, 0, max(frame_w - w, 0)))
        ys = np.unique(np.clip(ys, 0, max(frame_h - h, 0)))
        grid_x, grid_y = np.meshgrid(xs, ys)
        candidates = np.stack([grid_x.ravel(), grid_y.ravel(), np.full(grid_x.size, w), np.full(grid_x.size, h)], axis=1)
        free = ~(_overlap_areas(candidates, np.asarray(taken, np.int64).reshape(-1, 4)) > 0).any(axis=1)
        if not free.any():
            placed.append(None)
            continue
        candidates = candidates[free]
        right = np.hypot(candidates[:, 0] - (bx + bw + gap), candidates[:, 1] - by)
        left = np.hypot(candidates[:, 0] - (bx - w - gap), candidates[:, 1] - by)
        # Covering people costs as much as moving the frame's diagonal away per panel area covered.
        covered = _overlap_areas(candidates, people).sum(axis=1) / max(w * h, 1)
        cost = np.minimum(right, left) + covered * np.hypot(frame_w, frame_h)
        best = tuple(int(v) for v in candidates[int(np.argmin(cost))])
        placed.append(best)
        taken.append(best)
    return placed


@dataclass(frozen=True)
class Panel:
    """One person's panel: where it goes and the label lines it shows (fewer than the Top-5 in a crowd)."""

    track_id: int
    rect: Rect
    labels: list[LabelProb]
    uncertain: bool = False  # shown as "#id uncertain" with grey bars and text


class Overlay:
    def __init__(self, score_threshold: float = 0.3):
        self.score_threshold = score_threshold

    def draw(
        self,
        image: np.ndarray,
        poses: Poses,
        labels: dict[int, list[LabelProb]],
        fps: float | None,
        note: str = "",
        uncertain: set[int] = frozenset(),
    ) -> np.ndarray:
        """Draw on `image` in place and return it: people first, then the fps line and the panels on top.
        The panels of `uncertain` persons say so and grey their labels."""
        unit = max(image.shape[0] / 480.0, 0.5)
        text_unit = self._text_unit(image.shape)
        for i in range(len(poses)):
            track_id = int(poses.track_ids[i])
            colour = track_colour(track_id)
            self._skeleton(image, poses.keypoints[i], poses.scores[i], colour, unit)
            x1, y1, x2, y2 = poses.boxes[i].astype(int)
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, max(1, round(2 * unit)))
            tag = f"#{track_id}" if track_id >= 0 else "?"
            self._text_box(image, tag, (x1, max(y1 - self._text_box_size(tag, text_unit)[1], 0)), colour, text_unit)
        header = self._header(fps, note)
        if header:
            self._text_box(image, header, self._header_origin(image.shape), (40, 40, 40), text_unit)
        for panel in self.layout(image.shape, poses, labels, header, uncertain):
            self._panel(image, panel, text_unit)
        return image

    def layout(
        self,
        shape: tuple[int, ...],
        poses: Poses,
        labels: dict[int, list[LabelProb]],
        header: str = "",
        uncertain: set[int] = frozenset(),
    ) -> list[Panel]:
        """The panels of the classified persons in a frame of `shape` (height, width[, channels]), oldest
        track first so a newcomer never moves an earlier panel, none covering another or the `header`.

        Every panel shows all its labels if all fit so, else every panel shows its top-1; a panel
        with no free place left is not shown.
        """
        text_unit = self._text_unit(shape)
        frame = (int(shape[1]), int(shape[0]))
        reserved = [(*self._header_origin(shape), *self._text_box_size(header, text_unit))] if header else []
        people = sorted((int(tid), box) for tid, box in zip(poses.track_ids.tolist(), poses.boxes) if int(tid) in labels)
        boxes = [(int(x1), int(y1), int(x2 - x1), int(y2 - y1)) for _, (x1, y1, x2, y2) in people]
        most = max((len(labels[tid]) for tid, _ in people), default=1)
        for lines in sorted({most, 1}, reverse=True):
            shown = [labels[tid][:lines] for tid, _ in people]
            sizes = [self._panel_size(self._title(tid, tid in uncertain), items, text_unit) for (tid, _), items in zip(people, shown)]
            rects = place_panels(boxes, sizes, frame, reserved)
            if all(r is not None for r in rects):
                break
        return [Panel(tid, rect, items, tid in uncertain) for (tid, _), rect, items in zip(people, rects, shown) if rect is not None]

    @staticmethod
    def _title(track_id: int, uncertain: bool) -> str:
        return f"#{track_id} uncertain" if uncertain else f"#{track_id}"

    @staticmethod
    def _text_unit(shape: tuple[int, ...]) -> float:
        # Text stays at least 0.75 units tall: smaller Hershey glyphs stop being readable at 320x240.
        return max(shape[0] / 480.0, 0.75)

    @staticmethod
    def _header(fps: float | None, note: str) -> str:
        header = f"{fps:.1f} fps" if fps else ""
        return f"{header}  {note}" if header and note else header or note

    @staticmethod
    def _header_origin(shape: tuple[int, ...]) -> tuple[int, int]:
        margin = int(4 * max(shape[0] / 480.0, 0.5))
        return margin, margin

    def _skeleton(self, image: np.ndarray, keypoint: np.ndarray, score: np.ndarray, colour: tuple[int, int, int], unit: float) -> None:
        thickness = max(1, round(2 * unit))
        visible = score > self.score_threshold
        points = keypoint.astype(int)
        for a, b in LIMBS:
            if visible[a] and visible[b]:
                cv2.line(image, tuple(points[a]), tuple(points[b]), colour, thickness, cv2.LINE_AA)
        for j in np.flatnonzero(visible):
            cv2.circle(image, tuple(points[j]), max(2, round(3 * unit)), (255, 255, 255), -1, cv2.LINE_AA)

    @staticmethod
    def _text_box_size(text: str, unit: float) -> tuple[int, int]:
        (w, h), base = cv2.getTextSize(text, FONT, 0.5 * unit, max(1, round(unit)))
        return w + 6, h + base + 4

    def _text_box(self, image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int], unit: float) -> None:
        """White text on a filled box whose top-left corner is `origin`."""
        x, y = origin
        w, h = self._text_box_size(text, unit)
        thickness = max(1, round(unit))
        (_, text_h), _ = cv2.getTextSize(text, FONT, 0.5 * unit, thickness)
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
        cv2.putText(image, text, (x + 3, y + text_h + 2), FONT, 0.5 * unit, (255, 255, 255), thickness, cv2.LINE_AA)

    @staticmethod
    def _panel_metrics(unit: float) -> tuple[float, int, int, int]:
        """Text scale, text thickness, line height and bar width of panels at `unit`."""
        return 0.42 * unit, max(1, round(unit)), int(18 * unit), int(70 * unit)

    def _panel_size(self, title: str, labels: list[LabelProb], unit: float) -> tuple[int, int]:
        """A title line (`#id`), then one line `bar label NN%` per label."""
        scale, thickness, line, bar_width = self._panel_metrics(unit)
        text_width = max(cv2.getTextSize(f"{item.label} 100%", FONT, scale, thickness + 1)[0][0] for item in labels)
        title_width = cv2.getTextSize(title, FONT, scale, thickness + 1)[0][0]
        width = max(text_width + bar_width, title_width) + int(14 * unit)
        return width, line * (len(labels) + 1) + int(6 * unit)

    def _panel(self, image: np.ndarray, panel: Panel, unit: float) -> None:
        scale, thickness, line, bar_width = self._panel_metrics(unit)
        colour = track_colour(panel.track_id)
        x, y, width, height = panel.rect
        roi = image[y : y + height, x : x + width]
        roi[:] = (roi * 0.35).astype(np.uint8)  # darken what lies behind the panel
        cv2.rectangle(image, (x, y), (x + width - 1, y + line), colour, -1)  # the title strip, in the person's colour
        text_x = x + int(4 * unit)
        title = self._title(panel.track_id, panel.uncertain)
        cv2.putText(image, title, (text_x, y + line - int(4 * unit)), FONT, scale, (255, 255, 255), thickness + 1, cv2.LINE_AA)
        bar_colour, text_colour = ((120, 120, 120), (170, 170, 170)) if panel.uncertain else (colour, (255, 255, 255))
        for k, item in enumerate(panel.labels):
            base_y = y + (k + 2) * line
            filled = int(bar_width * min(max(item.prob, 0.0), 1.0))
            cv2.rectangle(image, (text_x, base_y - int(11 * unit)), (text_x + bar_width, base_y - int(2 * unit)), (90, 90, 90), -1)
            cv2.rectangle(image, (text_x, base_y - int(11 * unit)), (text_x + filled, base_y - int(2 * unit)), bar_colour, -1)
            weight = thickness + 1 if k == 0 and not panel.uncertain else thickness
            text = f"{item.label} {item.prob:.0%}"
            cv2.putText(
                image, text, (text_x + bar_width + int(6 * unit), base_y - int(2 * unit)), FONT, scale, text_colour, weight, cv2.LINE_AA
            )
