"""ActionLSTM: skeleton-based action recognition, trained offline on a PYSKL/MMAction2 pickle and run live.

    from actionlstm import ActionRecognizer  # see pipeline/recognizer.py
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use: the CLI's quick errors should not wait for torch and ultralytics.
    if name == "ActionRecognizer":
        from pipeline.recognizer import ActionRecognizer

        return ActionRecognizer
    raise AttributeError(f"module 'actionlstm' has no attribute '{name}'")
