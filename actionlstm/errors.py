"""The exceptions the CLI turns into a one-line message and an exit code."""

import signal


class UserError(Exception):
    """Bad input from the user (file, option, data): shown as `error: <message>` without a traceback."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `docker stop`, systemd and `timeout` send), raised where Ctrl-C would be, so
    every path that ends cleanly on Ctrl-C ends the same way on it; the exit code says which."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def stop_on_sigterm() -> None:
    """From now on SIGTERM in the main thread behaves like Ctrl-C."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def interrupt_exit_code(stop: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM: the shell's codes for a run ended by a signal."""
    return 143 if isinstance(stop, Terminated) else 130
