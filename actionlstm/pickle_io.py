"""Reading and writing skeleton pickles without ever running code from them.

`ucf101_2d.pkl` was written by mmcv with pickle protocol 2 under numpy 1.x: bytes arrive through
`_codecs.encode(text, 'latin1')`, arrays through `numpy.core.multiarray._reconstruct` plus
`ndarray.__setstate__`, labels may be numpy scalars. `load_pickle` accepts exactly those
constructors (and their numpy 2 / protocol 5 spellings) and refuses every other global, so a
pickle that would call `os.system` fails before any of its code runs.
"""

import codecs
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from actionlstm.atomic import atomic_path
from actionlstm.errors import UserError


def _text_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """`_codecs.encode` restricted to the text codecs pickle protocol 2 uses for bytes."""
    if codecs.lookup(encoding).name not in {"latin-1", "iso8859-1", "utf-8", "ascii"}:
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return codecs.encode(text, encoding, errors)


def _reconstruct(subtype: type, shape: Any, dtype: Any) -> np.ndarray:
    """`ndarray` reconstruction that refuses array subclasses (which could carry behaviour) and
    pre-sized arrays (a few bytes of pickle could otherwise allocate gigabytes)."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("only plain numpy arrays are allowed")
    if np.prod(shape) != 0:  # numpy pickles start empty and set their data afterwards
        raise pickle.UnpicklingError("an array reconstructed with a non-empty shape is not allowed")
    return _multiarray._reconstruct(subtype, shape, dtype)


def _bytes_like(kind: type) -> Any:
    """`bytes` / `bytearray` for pickled byte strings (empty ones arrive as `bytes()`), never
    `bytes(N)`, which would let a tiny file allocate N bytes."""

    def build(*args: Any) -> Any:
        if args and not isinstance(args[0], (bytes, bytearray, str)):
            raise pickle.UnpicklingError(f"{kind.__name__}() of {type(args[0]).__name__} is not allowed")
        return kind(*args)

    return build


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _text_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): OrderedDict,
}
# Protocol 2 names Python 3's builtins `__builtin__` (pickle's fix_imports).
for _builtins in ("builtins", "__builtin__"):
    _ALLOWED_GLOBALS[(_builtins, "set")] = set
    _ALLOWED_GLOBALS[(_builtins, "frozenset")] = frozenset
    _ALLOWED_GLOBALS[(_builtins, "bytes")] = _bytes_like(bytes)
    _ALLOWED_GLOBALS[(_builtins, "bytearray")] = _bytes_like(bytearray)
for _module in ("numpy.core", "numpy._core"):
    _ALLOWED_GLOBALS[(f"{_module}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED_GLOBALS[(f"{_module}.multiarray", "scalar")] = _multiarray.scalar
    _ALLOWED_GLOBALS[(f"{_module}.numeric", "_frombuffer")] = _numeric._frombuffer


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"{module}.{name}") from None


class _RefusedGlobal(pickle.UnpicklingError):
    pass


def load_pickle(path: Path) -> Any:
    """Load a pickle that may only build numpy arrays, numpy scalars and plain containers."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"file not found: {path}")
    if not path.is_file():
        raise UserError(f"not a file: {path}")
    try:
        with path.open("rb") as f:
            return _RestrictedUnpickler(f).load()
    except _RefusedGlobal as exc:
        raise UserError(
            f"refusing to load {path}: it references {exc}, which a skeleton pickle never needs "
            "(a pickle like this could run code)"
        ) from None
    except MemoryError:
        raise UserError(f"not enough memory to load {path}") from None
    except Exception as exc:  # truncated or foreign files raise many different errors
        raise UserError(f"{path} is not a readable pickle ({type(exc).__name__}: {exc})") from None


class _Numpy1Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pure-Python pickler that names numpy's constructors as numpy 1.x did (`numpy.core...`)."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = getattr(obj, "__module__", "") or ""
        if module.startswith("numpy._core."):
            qualname = name or obj.__qualname__
            legacy = "numpy.core." + module.removeprefix("numpy._core.")
            self.write(pickle.GLOBAL + f"{legacy}\n{qualname}\n".encode("utf-8"))
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump_pickle_like_mmcv(obj: Any, path: Path) -> None:
    """Write `obj` the way mmcv wrote ucf101_2d.pkl (protocol 2, numpy 1.x names), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        _Numpy1Pickler(f, protocol=2).dump(obj)
