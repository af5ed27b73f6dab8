"""Paths: where ActionLSTM keeps what it can remake (parsed pickles, exported pose models), and
whether an output can be written there, asked before hours of work rather than after."""

import os
import tempfile
from pathlib import Path

from actionlstm.errors import UserError


def cache_root() -> Path:
    """`$ACTIONLSTM_CACHE_DIR`, else `~/.cache/actionlstm`."""
    return Path(os.environ.get("ACTIONLSTM_CACHE_DIR", Path.home() / ".cache" / "actionlstm"))


def file_identity(path: Path) -> str:
    """What keys a cache entry made from a file: its absolute path, size and modification time."""
    stat = Path(path).stat()
    return f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def check_writable_folder(folder: Path) -> None:
    """A folder that exists or can be made, and can be written to."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".actionlstm-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write to {folder}: {exc.strerror or exc}") from None


def check_output_file(path: Path, source: str | None = None) -> None:
    """An output must be a file name in a writable folder, and never the input it is made from."""
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name")
    if source is not None and Path(source).exists() and path.resolve() == Path(source).resolve():
        raise UserError(f"{path} is the input; choose another output file")
    check_writable_folder(path.parent)
