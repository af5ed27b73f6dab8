"""Where ActionLSTM keeps what it can remake: parsed pickles and exported pose models."""

import os
from pathlib import Path


def cache_root() -> Path:
    """`$ACTIONLSTM_CACHE_DIR`, else `~/.cache/actionlstm`."""
    return Path(os.environ.get("ACTIONLSTM_CACHE_DIR", Path.home() / ".cache" / "actionlstm"))
