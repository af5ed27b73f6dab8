"""The `actionlstm` command, the top layer: the one place that imports every other.

    options.py  the typer app, command registration, shared options, one option per settings field
    data.py     train, evaluate, predict, sample, extract
    live.py     run, record, timeline
    camera.py   check-camera
    serve.py    serve
    models.py   models, export, quantize-pose
    demo.py     demo

Each command parses its options, calls the library (`actionlstm`, `pipeline`) and prints.
"""

import sys

from rich.markup import escape

from actionlstm import console
from actionlstm.cli import camera, data, demo, live, models, serve  # noqa: F401  (each registers its commands)
from actionlstm.cli.options import app
from actionlstm.errors import UserError


def execute(args: list[str] | None = None) -> None:
    """Run the command line `args` (default: the process's) to its end, which is always `SystemExit`:
    a user error becomes one line on stderr and exit code 1; Ctrl-C and SIGTERM end with a line
    saying so and exit codes 130 and 143 (see `options.command`)."""
    try:
        app(args, prog_name="actionlstm")
    except UserError as exc:
        console.err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)


def main() -> None:
    """Console entry point (`actionlstm`, `python -m actionlstm`)."""
    from actionlstm.process import set_up_process

    set_up_process()
    execute()
