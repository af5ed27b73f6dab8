"""The command line's own plumbing: the live stages' settings are declared once (`with_settings`) and
reach a command as one object, every command keeps the option names and defaults it had, and the
version and one-line errors come from `actionlstm.cli.execute` as from the installed command."""

from dataclasses import fields
from pathlib import Path

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from actionlstm.cli import app
from actionlstm.cli.options import SETTING_OPTIONS, with_settings
from pipeline.settings import CONF, LOST_SECONDS, MIN_PROB, TRACKER, PoseSettings, RecognizerSettings
from tests.helpers import assert_user_error, run_cli

# The live stages' options as `run` and `serve` had them before they were declared once: name, default.
RECOGNIZER_OPTIONS = {
    "--checkpoint": None, "--pose-model": None, "--pose-backend": "auto", "--classifier-backend": "auto", "--device": "auto",
    "--stride": 1, "--smoothing": 0.6, "--min-prob": 0.7, "--min-seconds": None, "--imgsz": 640, "--conf": 0.1,
    "--tracker": "bytetrack", "--lost-seconds": 2.0,
}  # fmt: skip
POSE_OPTIONS = {
    name: RECOGNIZER_OPTIONS[name]
    for name in ("--pose-model", "--pose-backend", "--device", "--imgsz", "--conf", "--tracker", "--lost-seconds")
}


def options_of(command: str) -> dict[str, object]:
    """Every option of an `actionlstm` command with its default."""
    params = typer.main.get_command(app).commands[command].params
    return {opt: param.default for param in params for opt in param.opts if opt.startswith("--")}


@pytest.mark.parametrize(
    ("command", "expected"),
    [("run", RECOGNIZER_OPTIONS), ("serve", RECOGNIZER_OPTIONS), ("check-camera", RECOGNIZER_OPTIONS), ("extract", POSE_OPTIONS)],
)
def test_the_settings_options_keep_their_names_and_defaults(command, expected):
    found = options_of(command)
    assert {name: found.get(name, "missing") for name in expected} == expected
    assert (MIN_PROB, CONF, TRACKER, LOST_SECONDS) == (0.7, 0.1, "bytetrack", 2.0)  # the defaults the table above was written with


def test_record_keeps_its_preview_options():
    assert {name: default for name, default in options_of("record").items() if name in ("--pose-model", "--device")} == {
        "--pose-model": None,
        "--device": "auto",
    }


def test_every_settings_field_has_one_option():
    assert {f.name for f in fields(RecognizerSettings)} == set(SETTING_OPTIONS)
    assert {f.name for f in fields(PoseSettings)} < set(SETTING_OPTIONS)


def test_the_options_reach_the_command_as_one_settings_object():
    probe = typer.Typer()
    got = {}

    @probe.command()
    @with_settings(RecognizerSettings)
    def look(source: str, settings: RecognizerSettings, extra: int = 1) -> None:
        got.update(source=source, settings=settings, extra=extra)

    args = [
        "clip.mp4",
        "--checkpoint",
        "m.pth",
        "--stride",
        "3",
        "--min-seconds",
        "0.5",
        "--tracker",
        "botsort",
        "--imgsz",
        "320",
        "--extra",
        "2",
    ]
    result = CliRunner().invoke(probe, args)
    assert result.exit_code == 0, result.output
    expected = RecognizerSettings(checkpoint=Path("m.pth"), stride=3, min_seconds=0.5, tracker="botsort", imgsz=320)
    assert got == {"source": "clip.mp4", "settings": expected, "extra": 2}
    assert CliRunner().invoke(probe, ["clip.mp4"]).exit_code == 2  # --checkpoint is required, as the dataclass says
    assert CliRunner().invoke(probe, ["clip.mp4", "--checkpoint", "m.pth", "--stride", "0"]).exit_code == 2  # and --stride's minimum holds


def test_a_settings_field_without_an_option_is_refused_when_the_command_is_declared():
    from dataclasses import dataclass

    @dataclass(frozen=True, kw_only=True)
    class More(PoseSettings):
        colour: str = "red"

    with pytest.raises(TypeError, match="More.colour"):
        with_settings(More)


def test_version_and_a_user_error_through_the_entry_point(tmp_path):
    from actionlstm import __version__

    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"actionlstm {__version__}"
    assert_user_error(run_cli("timeline", tmp_path / "none.jsonl", "--out", tmp_path / "t.png"), "predictions file not found")
