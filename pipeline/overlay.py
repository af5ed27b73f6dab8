"""Drawing: skeleton, box, track id and a Top-5 panel with probability bars per person, plus fps.

Sizes follow the frame height so the overlay reads the same at 320x240 and at 1080p.
"""

import cv2
import numpy as np

from actionlstm.skeleton import LIMBS
from pipeline.actions import LabelProb
from pipeline.tracking import Poses

FONT = cv2.FONT_HERSHEY_SIMPLEX
_PALETTE = [(66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60)]


def track_colour(track_id: int) -> tuple[int, int, int]:
    return _PALETTE[track_id % len(_PALETTE)] if track_id >= 0 else (160, 160, 160)


class Overlay:
    def __init__(self, score_threshold: float = 0.3):
        self.score_threshold = score_threshold

    def draw(self, image: np.ndarray, poses: Poses, labels: dict[int, list[LabelProb]], fps: float | None, note: str = "") -> np.ndarray:
        """Draw on `image` in place and return it."""
        # Text stays at least 0.75 units tall: smaller Hershey glyphs stop being readable at 320x240.
        unit = max(image.shape[0] / 480.0, 0.5)
        text_unit = max(unit, 0.75)
        panels: list[tuple[int, int, int, int]] = []  # placed so far, so that panels never cover each other
        for i in range(len(poses)):
            track_id = int(poses.track_ids[i])
            colour = track_colour(track_id)
            self._skeleton(image, poses.keypoints[i], poses.scores[i], colour, unit)
            x1, y1, x2, y2 = poses.boxes[i].astype(int)
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, max(1, round(2 * unit)))
            tag = f"#{track_id}" if track_id >= 0 else "?"
            self._text_box(image, tag, (x1, max(y1, 0)), colour, text_unit, above=True)
            if track_id in labels:
                panels.append(self._panel(image, labels[track_id], (x1, y1, x2, y2), colour, text_unit, panels))
        header = f"{fps:.1f} fps" if fps else ""
        if note:
            header = f"{header}  {note}" if header else note
        if header:
            self._text_box(image, header, (int(4 * unit), int(4 * unit)), (40, 40, 40), text_unit, above=False)
        return image

    def _skeleton(self, image: np.ndarray, keypoint: np.ndarray, score: np.ndarray, colour: tuple[int, int, int], unit: float) -> None:
        thickness = max(1, round(2 * unit))
        visible = score > self.score_threshold
        points = keypoint.astype(int)
        for a, b in LIMBS:
            if visible[a] and visible[b]:
                cv2.line(image, tuple(points[a]), tuple(points[b]), colour, thickness, cv2.LINE_AA)
        for j in np.flatnonzero(visible):
            cv2.circle(image, tuple(points[j]), max(2, round(3 * unit)), (255, 255, 255), -1, cv2.LINE_AA)

    def _text_box(self, image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int], unit: float, above: bool) -> None:
        scale = 0.5 * unit
        thickness = max(1, round(unit))
        (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
        x, y = origin
        top = y - h - base - 4 if above else y
        top = max(top, 0)
        cv2.rectangle(image, (x, top), (x + w + 6, top + h + base + 4), colour, -1)
        cv2.putText(image, text, (x + 3, top + h + 2), FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)

    def _panel(
        self, image: np.ndarray, labels: list[LabelProb], box: tuple[int, int, int, int], colour: tuple[int, int, int], unit: float,
        placed: list[tuple[int, int, int, int]],
    ) -> tuple[int, int, int, int]:
        """Top-k lines `label NN%` with bars, beside the box where it fits, below earlier panels it would
        cover, kept inside the frame. Returns the panel's rectangle (x, y, width, height)."""
        scale = 0.42 * unit
        thickness = max(1, round(unit))
        line = int(18 * unit)
        bar_width = int(70 * unit)
        text_width = max(cv2.getTextSize(f"{l.label} 100%", FONT, scale, thickness)[0][0] for l in labels)
        width = text_width + bar_width + int(14 * unit)
        height = line * len(labels) + int(6 * unit)
        img_h, img_w = image.shape[:2]
        x1, y1, x2, _ = box
        x = x2 + 4 if x2 + 4 + width <= img_w else x1 - 4 - width
        x = int(np.clip(x, 0, max(img_w - width, 0)))
        y = int(np.clip(y1, 0, max(img_h - height, 0)))
        for px, py, pw, ph in sorted(placed, key=lambda r: r[1]):
            if x < px + pw and px < x + width and y < py + ph and py < y + height:
                y = py + ph + 2
        y = int(np.clip(y, 0, max(img_h - height, 0)))
        roi = image[y : y + height, x : x + width]
        roi[:] = (roi * 0.35).astype(np.uint8)  # darken what lies behind the panel
        for k, item in enumerate(labels):
            base_y = y + (k + 1) * line
            bar_x = x + int(4 * unit)
            filled = int(bar_width * min(max(item.prob, 0.0), 1.0))
            cv2.rectangle(image, (bar_x, base_y - int(11 * unit)), (bar_x + bar_width, base_y - int(2 * unit)), (90, 90, 90), -1)
            cv2.rectangle(image, (bar_x, base_y - int(11 * unit)), (bar_x + filled, base_y - int(2 * unit)), colour, -1)
            text = f"{item.label} {item.prob:.0%}"
            weight = thickness + 1 if k == 0 else thickness
            cv2.putText(image, text, (bar_x + bar_width + int(6 * unit), base_y - int(2 * unit)), FONT, scale, (255, 255, 255), weight, cv2.LINE_AA)
        return x, y, width, height
