"""What every format shares: split options, located errors, the bad-record quarantine, byte splits.

A format module (``csv``, ``jsonl``, ``parquet``, ``avro``, ``seq``,
``compressed``) provides ``plan(path, split_size, options) -> [Split]``, a
``Reader(split, meter, bad)`` with ``records()`` and ``batches(n)``, and a
``Writer(f, options, bad)`` with ``write(key, value)`` and ``close()``.

Errors name the file, the split, the byte offset (or row) and the record,
because "bad input" is only useful when a person can find it.  With
``bad_records="skip"`` a bad record goes to ``BadRecords`` instead: it is
counted and written, with its reason and location, as a JSON line under the
output's ``_bad_records/`` when the task commits, and the task goes on.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from mapred.errors import InputError, RecordError
from mapred.io.fs import get_fs
from mapred.io.linerule import first_line_start
from mapred.types import Split

BAD_DIR = "_bad_records"
TEMPORARY = "_temporary"     # as io.outputs: an attempt writes under OUT/_temporary/<attempt>/


def temp_dir(output: str, attempt: str) -> str:
    """Where attempt ``attempt`` writes its part files before the commit renames them."""
    fs = get_fs(output)
    return fs.join(output, TEMPORARY, attempt)
POLICIES = ("fail", "skip")


def split_options(split: Split) -> dict:
    """The format options a planner stored in ``split.extra`` (one dict, so the split stays wire-plain)."""
    return dict(split.extra[0]) if split.extra and isinstance(split.extra[0], dict) else {}


def make_split(fmt: str, path: str, start: int, end: int, hosts=(), options: dict | None = None) -> Split:
    """A format split of ``path`` bytes ``start..end``, with the format's options."""
    return Split(0, fmt, path, int(start), int(end), tuple(hosts), "", (dict(options or {}),))


class FormatError(InputError):
    """Input that does not parse as its format, located: file, split, byte offset or row, and the record."""

    def __init__(self, path: str, reason: str, *, split: int | None = None, offset: int | None = None,
                 row: int | None = None, record: Any = None) -> None:
        self.path, self.reason, self.split = path, reason, split
        self.offset, self.row, self.record = offset, row, record
        super().__init__(self.describe())

    def location(self) -> str:
        """The file, and the split, offset and row where known, as one string."""
        where = [self.path]
        if self.split is not None:
            where.append(f"split {self.split}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        if self.row is not None:
            where.append(f"row {self.row}")
        return ", ".join(where)

    def describe(self) -> str:
        """The one-line message: where, why, and a short copy of the record."""
        text = f"{self.location()}: {self.reason}"
        if self.record is not None:
            text += f": record {_short(self.record)}"
        return text

    def to_json(self) -> dict:
        """The quarantine line written to ``_bad_records/`` for this record."""
        return {"file": self.path, "split": self.split, "offset": self.offset, "row": self.row,
                "reason": self.reason, "record": _plain(self.record)}


class SchemaError(RecordError):
    """A record the output's schema cannot hold (a wrong type, a missing column)."""

    def __init__(self, reason: str, record: Any = None, part: str = "") -> None:
        self.reason, self.record, self.part = reason, record, part
        super().__init__(f"{part + ': ' if part else ''}{reason}: record {_short(record)}")

    def to_json(self) -> dict:
        """The quarantine line for a part whose schema does not fit the others."""
        return {"file": self.part, "split": None, "offset": None, "row": None, "reason": self.reason,
                "record": _plain(self.record)}


def _short(record: Any, limit: int = 200) -> str:
    text = repr(record)
    return text if len(text) <= limit else text[:limit] + "..."


def _plain(value: Any) -> Any:
    """A JSON-safe rendering of a bad record (bytes as text with escapes; anything else by repr)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)


class BadRecords:
    """A task's bad records: raised (``fail``) or counted and kept in a side file (``skip``).

    The side file is written under the attempt's temporary directory and moved
    to ``OUT/_bad_records/<task>.jsonl`` when the attempt commits, like a part
    file — so a retried or speculative attempt never lists a record twice.
    """

    def __init__(self, policy: str = "fail", output: str | None = None, attempt: str = "",
                 name: str = "") -> None:
        if policy not in POLICIES:
            raise InputError(f"bad_records must be one of {POLICIES}, got {policy!r}")
        self.policy, self.output, self.attempt, self.name = policy, output, attempt, name
        self.count = 0
        self._f: BinaryIO | None = None

    @property
    def skipping(self) -> bool:
        """Whether bad records are quarantined (``skip``) rather than fatal."""
        return self.policy == "skip"

    def add(self, error) -> None:
        """Quarantine one bad record, or raise its error when the policy is ``fail``."""
        if not self.skipping:
            raise error
        self.count += 1
        if self.output is None:
            return
        if self._f is None:
            fs = get_fs(self.output)
            self._f = fs.open_write(fs.join(temp_dir(self.output, self.attempt), self.file_name))
        self._f.write(json.dumps(error.to_json(), ensure_ascii=False, default=repr).encode("utf-8") + b"\n")

    @property
    def file_name(self) -> str:
        """The quarantine file this task writes under ``_bad_records/``."""
        return f"{BAD_DIR}-{self.name}.jsonl"

    def close(self) -> list[str]:
        """Finish the side file; the names the commit moves (none when nothing was bad)."""
        if self._f is None:
            return []
        self._f.close()
        self._f = None
        return [self.file_name]


def commit_bad(output: str, attempt: str, names) -> None:
    """Move an attempt's bad-record files to ``OUT/_bad_records/`` (the attempt won its task)."""
    fs = get_fs(output)
    src_dir = temp_dir(output, attempt)
    for name in names:
        folder = fs.join(output, BAD_DIR)
        fs.makedirs(folder)
        dst = fs.join(folder, name[len(BAD_DIR) + 1:])
        if fs.exists(dst):
            fs.delete(dst)
        fs.rename(fs.join(src_dir, name), dst)


def read_bad_records(output: str) -> list[dict]:
    """Every quarantined record of a committed output, in task order."""
    fs = get_fs(output)
    folder = fs.join(output, BAD_DIR)
    if not fs.exists(folder):
        return []
    out = []
    for name in fs.listdir(folder):
        with fs.open_read(fs.join(folder, name)) as f:
            out.extend(json.loads(line) for line in f.read().decode("utf-8").splitlines() if line)
    return out


def quarantined_split(fmt: str, path: str, error: FormatError) -> Split:
    """The split that stands for a file its planner could not read, when bad records are skipped."""
    return make_split(fmt, path, 0, 0, (), {"quarantined": error.reason, "offset": error.offset})


class Quarantined:
    """The reader of a quarantined split: the whole file is one bad record, and no records are read.

    Its map task counts it and lists it under ``OUT/_bad_records/`` like any
    bad record, so a retried attempt never lists it twice.
    """

    def __init__(self, split: Split, meter, bad: BadRecords) -> None:
        self.split, self.bad = split, bad
        self.notes: dict = {}

    def records(self) -> Iterator:
        opts = split_options(self.split)
        self.bad.add(FormatError(self.split.path, f"{opts['quarantined']} (the whole file is skipped)",
                                 split=self.split.index, offset=opts.get("offset")))
        yield from ()

    def batches(self, size: int) -> Iterator:
        return self.records()


class Meter:
    """Counts bytes read when no split reader is there to count them (``fs cat``, the planner)."""

    def __init__(self) -> None:
        self.bytes_read = 0


def hosts_at(blocks: list, offset: int) -> tuple:
    """The hosts of the block holding ``offset`` (``blocks`` from ``fs.block_locations``)."""
    for start, length, hosts in blocks:
        if start <= offset < start + length:
            return tuple(hosts)
    return tuple(blocks[-1][2]) if blocks else ()


def byte_splits(fmt: str, path: str, split_size: int, options: dict) -> list[Split]:
    """Byte-range splits on block boundaries, each with the hosts of its block."""
    fs = get_fs(path)
    blocks = fs.block_locations(path, split_size)
    if not blocks:
        return [make_split(fmt, path, 0, 0, (), options)]
    return [make_split(fmt, path, s, s + n, hosts, options) for s, n, hosts in blocks]


def whole_file_split(fmt: str, path: str, options: dict) -> Split:
    """One split for a whole file that cannot be cut (hosts from its first block)."""
    fs = get_fs(path)
    blocks = fs.block_locations(path, 1 << 62)
    size = fs.size(path)
    return make_split(fmt, path, 0, size, hosts_at(blocks, 0), options)


READ_CHUNK = 4 << 20


def line_blocks(f: BinaryIO, start: int, end: int, meter) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` blocks of the whole lines that *start* in ``[start, end)`` (the line rule).

    A range not at 0 skips its first partial line (the previous range owns
    it) and every range reads past its end to finish its last line.
    """
    pos, scanned = first_line_start(f, start, 65536)
    meter.bytes_read += scanned
    f.seek(pos)
    carry, base = b"", pos
    while base < end or carry:
        data = f.read(READ_CHUNK if base + len(carry) < end else 65536)
        meter.bytes_read += len(data)
        if not data:
            if carry:
                yield base, carry
            return
        buf = carry + data
        if base + len(buf) > end:   # the last owned line is the one spanning `end`
            nl = buf.find(b"\n", max(end - base - 1, 0))
            if nl >= 0:
                yield base, buf[:nl + 1]
                return
        cut = buf.rfind(b"\n")
        if cut < 0:
            carry = buf
            continue
        yield base, buf[:cut + 1]
        carry, base = buf[cut + 1:], base + cut + 1


def json_line(value: Any) -> str:
    """One value as a JSON line for people (bytes as escaped text, tuples as lists, numpy as lists)."""
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(obj):
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", errors="backslashreplace")
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return repr(obj)


def as_record(key: Any, value: Any) -> Any:
    """What a record writer stores for a pair: the value when it is a record, else ``{key, value}``."""
    if isinstance(value, dict):
        return value
    return {"key": key, "value": value}


def as_pair(record: Any) -> tuple:
    """The inverse of ``as_record`` when reading a job's output back as pairs."""
    if isinstance(record, dict) and len(record) == 2 and "key" in record and "value" in record:
        return record["key"], record["value"]
    return None, record


class Tell:
    """A write-only file wrapper that knows its position (some store writers cannot ``tell``)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.pos, self.closed = f, 0, False

    def write(self, data) -> int:
        """Write through and count the bytes, so writers that ask ``tell()`` get the offset."""
        n = len(data) if not isinstance(data, memoryview) else data.nbytes
        self.f.write(data)
        self.pos += n
        return n

    def tell(self) -> int:
        """Bytes written so far."""
        return self.pos

    def flush(self) -> None:
        """Flush the wrapped file if it can."""
        if hasattr(self.f, "flush"):
            self.f.flush()

    def writable(self) -> bool:
        """Always true."""
        return True

    def seekable(self) -> bool:
        """False: writers must not seek the underlying part file."""
        return False

    def readable(self) -> bool:
        """False: a write-only stream."""
        return False

    def close(self) -> None:
        """Mark closed; the part output owns and closes the real file."""
        self.closed = True   # the part output owns and closes the real file
