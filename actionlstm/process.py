"""What an `actionlstm` process sets up before its command runs."""

import ctypes
import sys

from actionlstm.errors import stop_on_sigterm


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives threads their own malloc arenas (up to 8 per core); with the capture thread and
    the pose runtime's threads, a day-long run's memory crept up for minutes on end (soak test:
    +38%/h over 10 minutes; with 2 arenas flat). No-op where glibc's mallopt is not there."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8 is M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def set_up_process() -> None:
    """SIGTERM ends a command as Ctrl-C does, and glibc's malloc keeps to two arenas."""
    stop_on_sigterm()
    limit_malloc_arenas()
