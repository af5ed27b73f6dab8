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

from actionlstm.atomic import atomic_path
from actionlstm.errors import UserError

# Array element kinds a skeleton pickle may hold: bool, integers, floats, complex, bytes and text.
# Object and structured dtypes could smuggle pointers or code paths into numpy, so they are refused.
_PLAIN_KINDS = frozenset("biufcSU")


def _text_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """`_codecs.encode` restricted to the text codecs pickle protocol 2 uses for bytes."""
    if codecs.lookup(encoding).name not in {"latin-1", "iso8859-1", "utf-8", "ascii"}:
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return codecs.encode(text, encoding, errors)


def _bytes_like(kind: type) -> Any:
    """`bytes` / `bytearray` for pickled byte strings (empty ones arrive as `bytes()`), never
    `bytes(N)`, which would let a tiny file allocate N bytes."""

    def build(*args: Any) -> Any:
        if args and not isinstance(args[0], (bytes, bytearray, str)):
            raise pickle.UnpicklingError(f"{kind.__name__}() of {type(args[0]).__name__} is not allowed")
        return kind(*args)

    return build


class _DtypeSpec:
    """Stands in for `numpy.dtype(...)` while unpickling.

    A pickled dtype is a call followed by a state that numpy would apply to the live dtype object,
    flags included; crafted flags turn raw bytes into pointers. Here the state is only checked (its
    byte order is kept), and the real dtype is always one numpy builds from a plain type string.
    """

    def __init__(self, spec: Any, align: bool = False, copy: bool = False):
        if not isinstance(spec, str):
            raise pickle.UnpicklingError("a dtype must be named by a type string")
        dtype = np.dtype(spec)
        if dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise pickle.UnpicklingError(f"arrays of dtype {dtype} are not allowed")
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 8 or any(part is not None for part in state[2:5]):
            raise pickle.UnpicklingError("only plain dtypes are allowed")
        if state[7] != self.dtype.flags:
            raise pickle.UnpicklingError("a dtype with altered flags is not allowed")
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class _NdarrayType:
    """Stands in for `numpy.ndarray` as the type argument of `_reconstruct`; it builds nothing itself."""


def _make_array(shape: Any, spec: Any, data: Any, order: str) -> np.ndarray:
    """A writable array over a copy of `data`, whose size must be exactly what shape and dtype need."""
    if not isinstance(spec, _DtypeSpec):
        raise pickle.UnpicklingError("an array's dtype must come from numpy.dtype")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise pickle.UnpicklingError("an array's shape must be a tuple of sizes")
    if isinstance(data, pickle.PickleBuffer):
        data = data.raw()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise pickle.UnpicklingError("an array's data must be bytes")
    buffer = bytearray(data)
    if len(buffer) != int(np.prod(shape, dtype=np.int64)) * spec.dtype.itemsize:
        raise pickle.UnpicklingError("an array's data does not match its shape")
    return np.ndarray(shape=shape, dtype=spec.dtype, buffer=buffer, order=order)


class _ArraySpec:
    """Stands in for an array made by `_reconstruct`, until `ndarray.__setstate__`'s state arrives."""

    array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise pickle.UnpicklingError("unexpected array state")
        _, shape, spec, fortran, data = state
        self.array = _make_array(shape, spec, data, "F" if fortran else "C")


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> _ArraySpec:
    """numpy pickles an array as `_reconstruct(ndarray, (0,), b'b')` followed by its state."""
    if subtype is not _NdarrayType:
        raise pickle.UnpicklingError("only plain numpy arrays are allowed")
    return _ArraySpec()


def _frombuffer(data: Any, spec: Any, shape: Any, order: str) -> np.ndarray:
    """Protocol 5's array constructor."""
    if order not in ("C", "F"):
        raise pickle.UnpicklingError("unexpected array order")
    return _make_array(shape, spec, data, order)


def _scalar(spec: Any, data: Any = None) -> Any:
    """A numpy scalar (a label, say) from its dtype and raw bytes."""
    if not isinstance(data, bytes):
        raise pickle.UnpicklingError("a numpy scalar's data must be bytes")
    return _make_array((), spec, data, "C")[()]


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _text_encode,
    ("numpy", "ndarray"): _NdarrayType,
    ("numpy", "dtype"): _DtypeSpec,
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
    _ALLOWED_GLOBALS[(f"{_module}.multiarray", "scalar")] = _scalar
    _ALLOWED_GLOBALS[(f"{_module}.numeric", "_frombuffer")] = _frombuffer


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"{module}.{name}") from None


class _RefusedGlobal(pickle.UnpicklingError):
    pass


def _finish(obj: Any, done: dict[int, Any]) -> Any:
    """Swap the stand-ins for the arrays and dtypes they validated, through plain containers."""
    key = id(obj)
    if key in done:
        return done[key]
    if isinstance(obj, _ArraySpec):
        if obj.array is None:
            raise pickle.UnpicklingError("an array without data")
        result: Any = obj.array
    elif isinstance(obj, _DtypeSpec):
        result = obj.dtype
    elif isinstance(obj, list):
        result = []
        done[key] = result
        result.extend(_finish(item, done) for item in obj)
    elif isinstance(obj, dict):
        result = type(obj)()
        done[key] = result
        for k, v in obj.items():
            result[_finish(k, done)] = _finish(v, done)
    elif isinstance(obj, tuple):
        result = tuple(_finish(item, done) for item in obj)
    elif isinstance(obj, (set, frozenset)):
        result = type(obj)(_finish(item, done) for item in obj)
    elif obj is _NdarrayType:
        raise pickle.UnpicklingError("numpy.ndarray on its own is not data")
    else:
        result = obj
    done[key] = result
    return result


def load_pickle(path: Path) -> Any:
    """Load a pickle that may only build numpy arrays, numpy scalars and plain containers.

    No numpy constructor ever sees a value from the file unchecked: dtypes and arrays are built
    by stand-ins that accept plain element types and data of exactly the declared size, so the
    memory a file can claim is bounded by the file itself.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"file not found: {path}")
    if not path.is_file():
        raise UserError(f"not a file: {path}")
    try:
        with path.open("rb") as f:
            return _finish(_RestrictedUnpickler(f).load(), {})
    except _RefusedGlobal as exc:
        raise UserError(
            f"refusing to load {path}: it references {exc}, which a skeleton pickle never needs (a pickle like this could run code)"
        ) from None
    except MemoryError:
        raise UserError(f"not enough memory to load {path}") from None
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be a skeleton pickle") from None
    except Exception as exc:  # truncated or foreign files raise many different errors
        raise UserError(f"{path} is not a readable pickle ({type(exc).__name__}: {exc})") from None


class _Numpy1Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pure-Python pickler that names numpy's constructors as numpy 1.x did (`numpy.core...`)."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = getattr(obj, "__module__", "") or ""
        if module.startswith("numpy._core."):
            qualname = name or obj.__qualname__
            legacy = "numpy.core." + module.removeprefix("numpy._core.")
            self.write(pickle.GLOBAL + f"{legacy}\n{qualname}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump_pickle_like_mmcv(obj: Any, path: Path) -> None:
    """Write `obj` the way mmcv wrote ucf101_2d.pkl (protocol 2, numpy 1.x names), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        _Numpy1Pickler(f, protocol=2).dump(obj)
