"""ActionLSTM: skeleton-based action recognition, trained offline on a PYSKL/MMAction2 pickle and run live.

from actionlstm import ActionRecognizer  # see pipeline/recognizer.py
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("actionlstm")  # one source of truth: pyproject.toml
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"


def __getattr__(name: str):
    # Imported on first use: the CLI's quick errors should not wait for torch and ultralytics.
    if name == "ActionRecognizer":
        from pipeline.recognizer import ActionRecognizer

        return ActionRecognizer
    raise AttributeError(f"module 'actionlstm' has no attribute '{name}'")
