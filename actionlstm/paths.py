"""Where ActionLSTM keeps what it can remake: parsed pickles and exported pose models."""

import os
from pathlib import Path


def cache_root() -> Path:
    """`$ACTIONLSTM_CACHE_DIR`, else `~/.cache/actionlstm`."""
    return Path(os.environ.get("ACTIONLSTM_CACHE_DIR", Path.home() / ".cache" / "actionlstm"))


def file_identity(path: Path) -> str:
    """What keys a cache entry made from a file: its absolute path, size and modification time."""
    stat = Path(path).stat()
    return f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
