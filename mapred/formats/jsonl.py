"""JSON lines: one JSON value (usually an object) per line; split by the line rule like text.

A block of lines is parsed with one ``json.loads`` of ``[line,line,...]`` (C
speed); only when that fails are its lines parsed one by one to find the bad
line, which is reported (or quarantined) with its file, split, byte offset
and text.  Blank lines are skipped.  The writer writes compact UTF-8 JSON;
bytes (which JSON lacks) are written as text with backslash escapes.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from mapred.formats.base import (
    FormatError,
    SchemaError,
    as_record,
    line_blocks,
    make_split,
    split_options,
)
from mapred.formats.compressed import view

NAME = "jsonl"
EXTENSIONS = (".jsonl", ".ndjson", ".jsonlines")


def plan(path: str, split_size: int, options: dict) -> list:
    """Byte splits on block boundaries (frame groups for seekable zstd; one split for gzip/bzip2)."""
    v = view(path, split_size)
    if not v.splittable:
        return [make_split(NAME, path, 0, v.size, v.blocks[0][2], {"note": f"{v.codec} input is not splittable"})]
    return [make_split(NAME, path, s, s + n, hosts, {}) for s, n, hosts in v.blocks] or \
        [make_split(NAME, path, 0, 0, (), {})]


class Reader:
    def __init__(self, split, meter, bad) -> None:
        self.split, self.meter, self.bad = split, meter, bad
        self.notes: dict = {"unsplittable_files": 1} if split_options(split).get("note") else {}

    def _blocks(self) -> Iterator[tuple[list, list]]:
        s = self.split
        with view(s.path).open() as f:
            for base, data in line_blocks(f, s.start, s.end, self.meter):
                yield self._parse(base, data)

    def _parse(self, base: int, data: bytes) -> tuple[list, list]:
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        offsets, off, keep = [], base, []
        for ln in lines:
            if ln.strip():
                offsets.append(off)
                keep.append(ln)
            off += len(ln) + 1
        if not keep:
            return [], []
        try:
            return offsets, json.loads(b"[" + b",".join(keep) + b"]")
        except (ValueError, UnicodeDecodeError):
            pass
        good_offsets, values = [], []
        for o, ln in zip(offsets, keep):
            try:
                values.append(json.loads(ln))
                good_offsets.append(o)
            except (ValueError, UnicodeDecodeError) as exc:
                self.bad.add(FormatError(s_path(self.split), f"not valid JSON ({exc})", split=self.split.index,
                                         offset=o, record=ln[:500].decode("utf-8", errors="backslashreplace")))
        return good_offsets, values

    def records(self) -> Iterator[tuple[Any, Any]]:
        for offsets, values in self._blocks():
            yield from zip(offsets, values)

    def batches(self, size: int) -> Iterator[tuple[Any, list]]:
        for offsets, values in self._blocks():
            for i in range(0, len(values), size):
                yield offsets[i], values[i:i + size]


def s_path(split) -> str:
    return split.path


class Writer:
    def __init__(self, f, options: dict, bad, part: str = "") -> None:
        self.f, self.bad, self.part = f, bad, part
        self.buf: list[str] = []
        self.size = 0
        self.records = 0

    def write(self, key, value) -> None:
        record = value if key is None else as_record(key, value)
        try:
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_default,
                              allow_nan=False)
        except (TypeError, ValueError) as exc:
            self.bad.add(SchemaError(f"not representable in JSON ({exc})", record, self.part))
            return
        self.buf.append(line)
        self.size += len(line)
        self.records += 1
        if self.size > (1 << 20):
            self.flush()

    def write_arrays(self, pairs) -> None:
        for k, v in zip(pairs.keys.tolist(), pairs.values.tolist()):
            self.write(k, v)

    def flush(self) -> None:
        if self.buf:
            self.f.write(("\n".join(self.buf) + "\n").encode("utf-8", errors="surrogateescape"))
            self.buf, self.size = [], 0

    def close(self) -> None:
        self.flush()


def _default(obj):
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", errors="backslashreplace")
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
