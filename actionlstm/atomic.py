"""Write-to-temporary-then-rename, so a crash or Ctrl-C never leaves a half-written file behind.

`atomic_path` does it for a file written in one go; a file written over a whole run (a video, a
JSONL, see `pipeline.outputs`) uses its two halves, `temporary_beside` and `publish`.
"""

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_beside(path: Path, marker: str = "tmp") -> Path:
    """A new empty file in `path`'s folder, named for this writer alone (`.<stem>.<random>.<marker><suffix>`).

    The temporary name keeps the suffix, so writers that pick a format by extension still work.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".{marker}{path.suffix}")
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: Path) -> None:
    """Rename the finished `tmp` onto `path`, with the permissions a plainly created file gets (mkstemp makes 0600)."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(path)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(obj: object, path: Path) -> None:
    """`obj` as indented JSON, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
