"""Pose where something moves: a camera that shows an empty room runs the pose network rarely.

The pose network is nearly all of a frame's cost, and most cameras show nobody most of the day.
`MotionGate` looks at each live frame through a small grey copy (96 pixels wide, area-averaged, so
sensor noise and compression flicker average out) and compares it with the previous one. A frame
goes to the pose network when something moved, when someone is in view (the source's buffers hold
a person: they are kept for the tracker's lost time after the person was last seen, and for a
fallen person's down time), and otherwise `idle_fps` times a second, so a person who came in
without moving (or moved too little to see at 96 pixels) is still found within 1 / `idle_fps`
seconds. Frames it holds back are neither tracked nor labelled: nobody is in them to label, and
the buffers keep each frame's time, so the labels of whoever comes in next are what they would be.
"""

import cv2
import numpy as np

from pipeline.settings import IDLE_FPS

SMALL_WIDTH = 96  # width of the grey copy the test looks at
CHANGE_LEVEL = 16  # a pixel of the grey copy moved when it changed by more grey levels than this (of 255)
CHANGED_PIXELS = 3  # ... and something moved when at least this many did: a distant walker covers a few


class MotionGate:
    """Per live source: which frames the pose network must see. `idle_fps` 0 lets every frame through."""

    def __init__(self, idle_fps: float = IDLE_FPS):
        self.idle_fps = idle_fps
        self.previous: np.ndarray | None = None
        self.last_pose = -np.inf  # source time of the last frame let through
        self.checked = 0
        self.rested = 0  # frames held back

    def small(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        size = (SMALL_WIDTH, max(1, round(height * SMALL_WIDTH / width)))
        grey = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(grey, (3, 3), 0)

    def moved(self, image: np.ndarray) -> bool:
        """Whether this frame differs from the previous one checked (the first frame: yes)."""
        small = self.small(image)
        previous, self.previous = self.previous, small
        if previous is None or previous.shape != small.shape:
            return True
        return int(np.count_nonzero(cv2.absdiff(small, previous) > CHANGE_LEVEL)) >= CHANGED_PIXELS

    def needs_pose(self, image: np.ndarray, timestamp: float, someone_in_view: bool) -> bool:
        """Whether the frame at `timestamp` (seconds) goes to the pose network."""
        self.checked += 1
        if self.idle_fps <= 0:
            return True
        moved = self.moved(image)  # always, so the next frame is compared with this one
        due = timestamp - self.last_pose >= 1.0 / self.idle_fps
        if moved or someone_in_view or due:
            self.last_pose = timestamp
            return True
        self.rested += 1
        return False
