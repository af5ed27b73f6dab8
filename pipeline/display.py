"""The window a run or a recording shows, when a display exists; q, Esc or its close button asks to stop."""

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

import cv2

from actionlstm import console

WINDOW_TITLE = "ActionLSTM (q to quit)"
# A 384x288 video shown pixel for pixel is too small to read the overlay, so small frames open scaled
# up to at least this height; large ones are scaled down to fit a common 1920x1080 screen with room
# for the title bar and task bar. The window stays resizable either way.
MIN_HEIGHT = 720
MAX_SIZE = (1600, 900)
QUIT_KEYS = (ord("q"), ord("Q"), 27)


def window_size(width: int, height: int) -> tuple[int, int]:
    """The size a width x height frame first opens at: aspect kept, at least MIN_HEIGHT tall, inside MAX_SIZE."""
    scale = max(1.0, MIN_HEIGHT / height)
    scale = min(scale, MAX_SIZE[0] / width, MAX_SIZE[1] / height)
    return round(width * scale), round(height * scale)


def _font_dirs() -> list[Path]:
    """Folders holding .ttf files Qt can load: matplotlib (a dependency) ships DejaVu, then common system ones."""
    dirs = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        dirs.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf")
    dirs += [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"), Path("/usr/share/fonts/TTF")]
    return dirs


def use_existing_font_dir() -> None:
    """Point Qt at a font folder that exists.

    The opencv-python wheel's cv2/__init__ sets QT_QPA_FONTDIR to cv2/qt/fonts, a folder it does not ship,
    so its Qt (built without fontconfig) prints "QFontDatabase: Cannot find font directory" on every run
    and has no fonts. Qt reads the variable when the first window is created, so this must run after
    `import cv2` (which overwrites it) and before the first window. Our window draws no Qt text, but
    anything that does (a status bar, a trackbar, another window of the process) would warn and draw
    without fonts. A folder the user set that exists is kept; no Qt message is silenced.
    """
    current = os.environ.get("QT_QPA_FONTDIR")
    if current and Path(current).is_dir():
        return
    for folder in _font_dirs():
        if folder.is_dir() and any(folder.glob("*.ttf")):
            os.environ["QT_QPA_FONTDIR"] = str(folder)
            return


def x_server_reachable() -> bool:
    """Whether the X server named by DISPLAY accepts a connection.

    OpenCV's Qt aborts the whole process (SIGABRT, no exception) when DISPLAY names a server that is
    gone, e.g. a stale DISPLAY in an ssh session, so ask first with libxcb, the library Qt itself
    connects with; if it cannot be loaded, Qt's window cannot work either.
    """
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return False
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(None, None)
    try:
        return connection is not None and xcb.xcb_connection_has_error(connection) == 0
    finally:
        if connection is not None:
            xcb.xcb_disconnect(connection)


class Display:
    """A resizable OpenCV window when a display exists; otherwise says so once and stays headless."""

    def __init__(self, enabled: bool, title: str = WINDOW_TITLE):
        self.title = title
        self.enabled = enabled and self._display_available()
        self._opened = False
        if enabled and not self.enabled:
            display = os.environ.get("DISPLAY")
            problem = f"cannot reach DISPLAY={display}" if display else "no display available"
            console.err.print(f"{problem}: continuing headless (use --no-show to silence this)")

    @staticmethod
    def _display_available() -> bool:
        if sys.platform.startswith("linux"):
            if os.environ.get("DISPLAY"):
                return x_server_reachable()
            return bool(os.environ.get("WAYLAND_DISPLAY"))
        return True

    def _open(self, width: int, height: int) -> None:
        """Create the window once, sized for the first frame; later the user's own resizing is kept.
        GUI_NORMAL: the picture only, without the Qt toolbar (pan/zoom/save) and pixel-value status bar,
        which only take room from the video a person watches."""
        use_existing_font_dir()
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        cv2.resizeWindow(self.title, *window_size(width, height))
        self._opened = True

    def _closed_by_user(self) -> bool:
        """True once the window's close button was used (OpenCV reports it not visible, or it is gone)."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def show(self, image) -> bool:
        """Show a frame; False when the user asked to quit (q, Esc, or closing the window)."""
        if not self.enabled:
            return True
        try:
            if not self._opened:
                self._open(image.shape[1], image.shape[0])
            elif self._closed_by_user():
                return False
            cv2.imshow(self.title, image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error:
            console.err.print("cannot open a window: continuing headless")
            self.enabled = False
            return True
        return key not in QUIT_KEYS and not self._closed_by_user()

    def close(self) -> None:
        """Destroy our window only: other OpenCV windows of the same process are not ours to close."""
        if not self._opened:
            return
        self._opened = False
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass  # the user already closed it
