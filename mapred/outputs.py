"""Job output: part files written by attempts, and ``Result`` reading committed output back.

``text`` writes ``key<TAB>value`` lines with ``str()`` of each side (a value
of ``None`` writes the key alone), as Hadoop's TextOutputFormat does;
``msgpack`` writes record files (``part-00000.mpk``) that read back as the
original Python values and can feed the next job of a pipeline.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from . import recordfile
from .errors import InputError
from .fs import get_fs

SUCCESS = "_SUCCESS"
TEMPORARY = "_temporary"


def part_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}" + (".mpk" if fmt == "msgpack" else "")


class TextWriter:
    def __init__(self, f) -> None:
        self.f = f
        self.records = 0
        self.buf: list[str] = []

    def write(self, key: Any, value: Any) -> None:
        self.buf.append(f"{key}\n" if value is None else f"{key}\t{value}\n")
        self.records += 1
        if len(self.buf) >= 8192:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.f.write("".join(self.buf).encode("utf-8", errors="surrogateescape"))
            self.buf = []

    def close(self) -> None:
        self.flush()


class MsgpackWriter(recordfile.RecordWriter):
    pass


def open_writer(f, fmt: str):
    return MsgpackWriter(f) if fmt == "msgpack" else TextWriter(f)


def temp_dir(output: str, attempt: str) -> str:
    fs = get_fs(output)
    return fs.join(output, TEMPORARY, attempt)


class Result:
    """The committed output of a job: iterate it for ``(key, value)`` pairs, part by part.

    Text output yields strings (``(key, value)`` split at the first tab;
    ``value`` is ``None`` for lines without one); msgpack output yields the
    values the reducers wrote.
    """

    def __init__(self, path: str, counters: dict | None = None, job_id: str = "",
                 elapsed: float = 0.0) -> None:
        self.path = path
        self.counters = counters or {}
        self.job_id = job_id
        self.elapsed = elapsed

    def part_files(self) -> list[str]:
        fs = get_fs(self.path)
        if not fs.exists(fs.join(self.path, SUCCESS)):
            raise InputError(f"{self.path} holds no committed job output (no {SUCCESS})")
        return [fs.join(self.path, n) for n in fs.listdir(self.path) if n.startswith("part-")]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        for path in self.part_files():
            yield from read_part(path)

    def to_list(self) -> list:
        return list(self)

    def to_dict(self) -> dict:
        return dict(self)

    def counter(self, group: str, name: str) -> int:
        return self.counters.get(group, {}).get(name, 0)

    def __repr__(self) -> str:
        return f"Result({self.path!r})"


def read_part(path: str) -> Iterator[tuple[Any, Any]]:
    fs = get_fs(path)
    with fs.open_read(path) as f:
        if path.endswith(".mpk"):
            size = fs.size(path)
            for _, payload in recordfile.iter_chunks(f, path, 0, size):
                yield from recordfile.iter_records(payload)
            return
        for raw in f:
            line = raw.decode("utf-8", errors="surrogateescape").rstrip("\n")
            key, tab, value = line.partition("\t")
            yield key, (value if tab else None)


def write_success(output: str, info: dict) -> None:
    fs = get_fs(output)
    with fs.open_write(fs.join(output, SUCCESS)) as f:
        f.write(json.dumps(info, sort_keys=True, default=str).encode())
