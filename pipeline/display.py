"""The window a run or a recording shows, when a display exists; q or Esc in it asks to stop."""

import os
import sys

import cv2

from actionlstm import console

WINDOW_TITLE = "ActionLSTM (q to quit)"


class Display:
    """An OpenCV window when a display exists; otherwise says so once and stays headless."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and self._display_available()
        if enabled and not self.enabled:
            console.err.print("no display available: continuing headless (use --no-show to silence this)")

    @staticmethod
    def _display_available() -> bool:
        if sys.platform.startswith("linux"):
            return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        return True

    def show(self, image) -> bool:
        """Show a frame; False when the user asked to quit."""
        if not self.enabled:
            return True
        try:
            cv2.imshow(WINDOW_TITLE, image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error:
            console.err.print("cannot open a window: continuing headless")
            self.enabled = False
            return True
        return key not in (ord("q"), 27)

    def close(self) -> None:
        if self.enabled:
            cv2.destroyAllWindows()
