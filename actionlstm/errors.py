"""The exceptions a command ends with, and how an interrupt is told apart.

`UserError` is bad input: the CLI shows it as one line and exits 1. A command is interrupted by
Ctrl-C (KeyboardInterrupt) or by SIGTERM, which `stop_on_sigterm` raises as `Terminated`, a
KeyboardInterrupt too: every path that ends cleanly on Ctrl-C ends the same way on SIGTERM, and
`interrupt_name` and `interrupt_exit_code` say afterwards which of the two it was.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator


class UserError(Exception):
    """Bad input from the user (file, option, data): shown as `error: <message>` without a traceback."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `docker stop`, systemd and `timeout` send), raised where Ctrl-C would be."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def stop_on_sigterm() -> None:
    """From now on SIGTERM in the main thread behaves like Ctrl-C."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def interrupt_name(stop: KeyboardInterrupt) -> str:
    """ "SIGTERM" or "Ctrl-C", as a run's summary and the CLI's last line name it."""
    return "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"


def interrupt_exit_code(stop: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM: the shell's codes for a run ended by a signal."""
    return 143 if isinstance(stop, Terminated) else 130


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM that arrive inside the block are raised as it ends, not in its middle: what
    it writes (a frame to the video and its line to the JSONL) is written whole or not at all. Only
    the signals that raise here are held (SIGTERM once `stop_on_sigterm` made it), and only on the
    main thread, where Python runs signal handlers."""
    raising = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: _raise_terminated}
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.getsignal(s) for s in raising}
    for s in [s for s, handler in raising.items() if previous[s] is handler]:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if held:
            raise Terminated() if held[0] == signal.SIGTERM else KeyboardInterrupt()
