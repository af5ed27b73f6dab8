"""Where output goes: results on stdout (so `--json` stays parseable), progress and messages on stderr."""

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
