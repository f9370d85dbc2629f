"""Key and record encoding, the one total sort order, and the stable partition hash.

Everything the engine moves between processes is msgpack: keys and values are
plain Python values (None, bool, int, float, str, bytes, list, dict, tuple)
plus numpy scalars and arrays.  Tuples survive the trip as tuples (ext type 1)
because tuple keys are common (``(user, item)``) and must stay hashable; numpy
arrays travel as raw bytes with dtype and shape (ext type 2).

``order_key`` defines the sort order every part of the engine and the
sequential reference agree on: natural Python order within a type, and a fixed
rank between types so that mixed keys never raise.  ``stable_hash`` hashes the
encoded key, so the partition of a key is the same in every process
(``hash()`` of a str changes with ``PYTHONHASHSEED``).
"""
from __future__ import annotations

import threading
from enum import Enum
from operator import itemgetter
from typing import Any, Iterable

import msgpack
import numpy as np
import xxhash

from mapred.errors import RecordError

EXT_TUPLE = 1
EXT_NDARRAY = 2


_inner = threading.local()      # .free: this thread's idle packers for ext payloads


def _pack_inner(obj: Any) -> bytes:
    """``packb`` for an ext type's payload (a tuple's items, an array's header), on a reused packer.

    ``msgpack.packb`` builds a new ``Packer`` per call, which costs more than
    packing a small tuple: on tagged values (the join's ``(tag, value)``)
    that was 0.8 of the 1.9 us a value took to spill. A tuple inside a tuple
    packs while the outer payload is still being packed, so each nesting
    level takes its own packer from the thread's free list; one that raised
    is dropped rather than reused.
    """
    free = getattr(_inner, "free", None)
    if free is None:
        free = _inner.free = []
    packer = free.pop() if free else msgpack.Packer(default=_default, use_bin_type=True, strict_types=True)
    data = packer.pack(obj)
    free.append(packer)
    return data


def _default(obj: Any) -> Any:
    """Turn the values msgpack cannot pack natively (with strict types) into ones it can."""
    if type(obj) is tuple:
        return msgpack.ExtType(EXT_TUPLE, _pack_inner(list(obj)))
    if isinstance(obj, tuple):
        return msgpack.ExtType(EXT_TUPLE, packb(list(obj)))
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("numpy arrays of dtype object cannot be encoded")
        arr = np.ascontiguousarray(obj)
        return msgpack.ExtType(EXT_NDARRAY, _pack_inner([arr.dtype.str, list(arr.shape), arr.tobytes()]))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, bytes):
        return bytes(obj)
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, list):
        return list(obj)
    raise TypeError(f"cannot encode value of type {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_TUPLE:
        return tuple(unpackb(data))
    if code == EXT_NDARRAY:
        dtype, shape, raw = unpackb(data)
        return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
    return msgpack.ExtType(code, data)


def packb(obj: Any) -> bytes:
    """Encode one value; raises ``TypeError`` for a value mapred cannot carry."""
    return msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=True)


def unpackb(data: bytes) -> Any:
    """Decode what ``packb`` encoded (tuples and arrays come back as themselves)."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def make_packer(autoreset: bool = True) -> msgpack.Packer:
    """A reusable packer for hot loops (spill writers); not shared between threads.

    With ``autoreset=False`` packed values accumulate in the packer's buffer
    (``bytes()`` / ``reset()``), which saves a bytes object per record.
    """
    return msgpack.Packer(default=_default, use_bin_type=True, strict_types=True, autoreset=autoreset)


def make_unpacker(file_like=None, max_buffer_size: int = 1 << 30, read_size: int = 32 * 1024) -> msgpack.Unpacker:
    """A streaming unpacker producing the same values ``unpackb`` would.

    ``read_size`` is kept small because a merge holds one unpacker per run
    and msgpack sizes each one's buffer from it.
    """
    return msgpack.Unpacker(file_like, ext_hook=_ext_hook, raw=False, strict_map_key=False,
                            max_buffer_size=max_buffer_size, read_size=read_size)


_packers = threading.local()


def encode_key(key: Any) -> bytes:
    """Encode a key, or raise ``RecordError`` naming its type (one reused packer per thread)."""
    packer = getattr(_packers, "packer", None)
    if packer is None:
        packer = _packers.packer = make_packer()
    try:
        return packer.pack(key)
    except (TypeError, ValueError, OverflowError) as exc:
        raise RecordError(f"key {key!r:.80} of type {type(key).__name__} cannot be encoded: {exc}") from None


def stable_hash(key: Any) -> int:
    """A 64-bit hash of the encoded key: the same in every process and on every host."""
    return xxhash.xxh64_intdigest(encode_key(key))


_RANK_NONE, _RANK_NUMBER, _RANK_STR, _RANK_BYTES, _RANK_SEQ, _RANK_OTHER = range(6)


def order_key(key: Any) -> tuple:
    """The sort key of a record key: natural order within a type, fixed ranks across types."""
    t = type(key)
    if t is str:
        return (_RANK_STR, key)
    if t is int or t is float or t is bool:
        return (_RANK_NUMBER, key)
    if key is None:
        return (_RANK_NONE, 0)
    if t is bytes:
        return (_RANK_BYTES, key)
    if t is tuple or t is list:
        return (_RANK_SEQ, tuple(order_key(k) for k in key))
    if isinstance(key, (int, float, np.integer, np.floating)):
        return (_RANK_NUMBER, key)
    if isinstance(key, str):
        return (_RANK_STR, str(key))
    return (_RANK_OTHER, encode_key(key))


_NATIVE_GROUPS = ({str}, {bytes}, {int}, {float}, {int, float}, {int, bool}, {int, float, bool})


def sort_keys(keys: Iterable[Any]) -> list:
    """Sort keys in ``order_key`` order, natively (no key function) when the types allow it."""
    keys = list(keys)
    types = set(map(type, keys))
    if len(types) <= 1 and (not types or types <= {str} or types <= {bytes} or types <= {int}
                             or types <= {float}):
        return sorted(keys)
    if types in _NATIVE_GROUPS:
        return sorted(keys)
    return sorted(keys, key=order_key)


_first = itemgetter(0)


def _order_of_first(record) -> tuple:
    return order_key(record[0])


def sort_records(records: list) -> set:
    """Sort ``[key, ...]`` records in place by key in ``order_key`` order; returns the keys' types.

    Natively (the keys compared as they are) when their types allow it, as
    ``sort_keys``.  Sorting the records, not the keys, lets a caller build
    them in the order their dict is laid out in memory and never look a key
    up again in sorted order (a cache miss per key on a large buffer).
    """
    types = set(map(type, map(_first, records)))
    if not types or types in _NATIVE_GROUPS:
        records.sort(key=_first)
    else:
        records.sort(key=_order_of_first)
    return types


def approx_size(obj: Any) -> int:
    """A cheap estimate of the memory a value takes as Python objects, for the sort buffer's bound."""
    t = type(obj)
    if t is str:
        return len(obj) + 49
    if t is bytes:
        return len(obj) + 33
    if t is int or t is float or t is bool or obj is None:
        return 28
    if t is tuple or t is list:
        return 56 + sum(approx_size(x) + 8 for x in obj)
    if t is np.ndarray:
        return obj.nbytes + 112
    if t is dict:
        return 232 + sum(approx_size(k) + approx_size(v) + 24 for k, v in obj.items())
    try:
        return len(packb(obj)) + 64
    except TypeError:
        return 128
