"""`actionlstm demo`: the embedded default, with no download and no user data."""

from pathlib import Path
from typing import Annotated

import typer

from actionlstm import console
from actionlstm.cli.options import DeviceOpt, ShowOpt, command
from actionlstm.paths import check_writable_folder


@command
def demo(
    out_dir: Annotated[Path, typer.Option(help="Folder for everything the demo makes.")] = Path("actionlstm-demo"),
    device: DeviceOpt = "auto",
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs of the demo model.")] = 8,
    show: ShowOpt = False,
) -> None:
    """The embedded default: sample data -> demo model -> full pipeline on real people. No downloads."""
    from pipeline.demo import run_demo

    check_writable_folder(out_dir)
    if exit_code := run_demo(out_dir, device, epochs, show):
        raise typer.Exit(exit_code)
    console.out.print(
        "[bold yellow]These labels come from a demo model trained on synthetic movements.[/] "
        "For real actions, train on ucf101_2d.pkl (see README) and run:\n"
        "  actionlstm run 0 --checkpoint checkpoints/action_lstm_ucf101.pth"
    )
