"""ActionLSTM: skeleton-based action recognition, trained offline on a PYSKL/MMAction2 pickle and run live."""

__version__ = "0.1.0"
