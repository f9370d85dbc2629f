"""A sparse, sorted key index per output part (Hadoop's MapFile idea), so a key lookup seeks.

A reduce part holds its keys in sorted order.  While the part is written,
``IndexedWriter`` notes every ``interval``-th key with the byte offset where
its record starts (text: the line; msgpack record files: the chunk), and
whether the keys really came in order (a reducer may emit other keys).  At
commit the indexes of the committed parts go into ``_SUCCESS`` (see
``runtime.plan``), so the index can never disagree with the parts it
describes and no extra files appear in the output directory.

``find`` answers a lookup: bisect the index to the last entry not above the
key, read from its offset to the next entry's, scan those few records.  The
index is bounded: past ``MAX_ENTRIES`` every other entry is dropped and the
interval doubles, so a huge part keeps a small index.
"""
from __future__ import annotations

import bisect
from typing import Any, Iterator

from mapred.io.codec import order_key

INTERVAL = 128          # records between index entries at first (MapFile's io.map.index.interval)
MAX_ENTRIES = 4096      # per part; beyond it the index thins itself out
_PLAIN = (str, int, float, bool, type(None))


def _plain(key: Any) -> bool:
    """Keys that survive JSON unchanged in order (tuples come back as lists, which sort the same)."""
    if isinstance(key, _PLAIN):
        return not (isinstance(key, float) and key != key)     # NaN has no place in an order
    return isinstance(key, (tuple, list)) and all(_plain(k) for k in key)


def _kind(key: Any) -> str:
    if isinstance(key, bool) or key is None:
        return "other"
    if isinstance(key, int):
        return "int"
    if isinstance(key, float):
        return "float"
    return "str" if isinstance(key, str) else "other"


class IndexedWriter:
    """Wraps a ``TextWriter`` or ``MsgpackWriter``: same ``write``/``write_arrays``/``close``, plus ``index``."""

    def __init__(self, inner, fmt: str) -> None:
        self.inner, self.fmt = inner, fmt
        self.keys: list = []
        self.offsets: list[int] = []
        self.interval = INTERVAL
        self.n = 0
        self.prev: Any = None
        self.sorted = True
        self.usable = True
        self.kinds: set[str] = set()
        self.last_type: type | None = None      # the type of the last str/int key (its kind is noted)

    @property
    def records(self) -> int:
        return self.inner.records

    def write(self, key: Any, value: Any) -> None:
        if self.usable:
            self._note(key)
        self.inner.write(key, value)

    def _note(self, key: Any) -> None:
        if self.n and self.sorted:
            try:
                if key < self.prev:
                    self.sorted = False
            except TypeError:
                if order_key(key) < order_key(self.prev):
                    self.sorted = False
        t = type(key)
        if t is str or t is int:           # the common keys: plain, their kind noted once per part
            if not self.sorted:
                self.usable = False
                return
            if t is not self.last_type:
                self.kinds.add(_kind(key))
                self.last_type = t
        elif not self.sorted or not _plain(key):
            self.usable = False
            return
        else:
            self.kinds.add(_kind(key))
            self.last_type = None
        if self.n % self.interval == 0:
            offset = self._boundary()
            if offset is not None:
                self.keys.append(key)
                self.offsets.append(offset)
                if len(self.keys) > MAX_ENTRIES:
                    self.keys, self.offsets = self.keys[::2], self.offsets[::2]
                    self.interval *= 2
        self.prev = key
        self.n += 1

    def _boundary(self) -> int | None:
        """The byte offset where the next record starts, making it a record boundary if needed."""
        if self.fmt == "text":
            self.inner.flush()
            return self.inner.offset
        if self.inner.buf:          # msgpack: only a chunk start can be sought to
            self.inner.flush_chunk()
        return self.inner.offset

    def write_arrays(self, pairs) -> None:
        for key, value in zip(pairs.keys.tolist(), pairs.values):
            self.write(key, value.tolist() if hasattr(value, "tolist") else value)

    def close(self) -> None:
        self.inner.close()

    def index(self) -> dict | None:
        """The part's index (plain JSON values), or None when its keys are unsorted or not plain."""
        if not self.usable:
            return None
        kind = self.kinds.pop() if len(self.kinds) == 1 else ("num" if self.kinds <= {"int", "float"} else "mixed")
        return {"format": self.fmt, "records": self.n, "keytype": kind, "keys": self.keys,
                "offsets": self.offsets, "end": self.inner.offset}


def typed_key(text: str, keytype: str) -> Any:
    """The key a URL names, as the type the part's keys have (``"7"`` is 7 in an int-keyed part)."""
    if keytype == "int":
        return int(text)
    if keytype in ("float", "num"):
        value = float(text)
        return int(value) if keytype == "num" and value.is_integer() else value
    return text


def segment(index: dict, key: Any) -> tuple[int, int] | None:
    """The byte range ``[start, end)`` of the part that holds ``key`` if it is there at all."""
    keys = index["keys"]
    if not keys:
        return None
    ordered = [order_key(k) for k in keys]
    target = order_key(key)
    i = bisect.bisect_right(ordered, target) - 1
    if i < 0:
        return None
    # equal keys may spill past one entry: extend to the first entry above the key
    j = bisect.bisect_right(ordered, target, lo=i)
    start = index["offsets"][i]
    while i > 0 and ordered[i - 1] == target:
        i -= 1
        start = index["offsets"][i]
    end = index["offsets"][j] if j < len(keys) else index["end"]
    return start, end


def matches(records: Iterator[tuple[Any, Any]], key: Any, text: bool) -> list:
    """Values of ``key`` among ``records`` (text parts compare the written form of the key)."""
    want = str(key) if text else key
    out = []
    for k, v in records:
        if k == want:
            out.append(v)
    return out
