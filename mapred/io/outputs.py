"""Job output: part files written by attempts, and ``Result`` reading committed output back.

``text`` writes ``key<TAB>value`` lines with ``str()`` of each side (a value
of ``None`` writes the key alone), as Hadoop's TextOutputFormat does;
``msgpack`` writes record files (``part-00000.mpk``) that read back as the
original Python values and can feed the next job of a pipeline.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np

from mapred.io import recordfile
from mapred.errors import InputError
from mapred.io.fs import get_fs

SUCCESS = "_SUCCESS"
TEMPORARY = "_temporary"
_temp_outputs: list[str] = []


def temp_output() -> str:
    """A fresh local directory for a job run with ``output=None``, removed when the process exits."""
    import atexit
    import shutil
    import tempfile
    path = tempfile.mkdtemp(prefix="mapred-out-")
    if not _temp_outputs:
        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _temp_outputs])
    _temp_outputs.append(path)
    return path


RECORD_FORMATS = ("csv", "jsonl", "parquet", "avro", "seq")
TEXT_COMPRESSIONS = {"gzip": ".gz", "bzip2": ".bz2", "zstd": ".zst"}


def part_name(index: int, fmt: str, options: dict | None = None) -> str:
    """``part-00003`` plus the suffix that says the format (``.mpk``, ``.parquet``, ``.csv.gz`` ...)."""
    name = f"part-{index:05d}" + (".mpk" if fmt == "msgpack" else "")
    if fmt in RECORD_FORMATS:
        name += "." + fmt
    if fmt in ("text", "csv", "jsonl"):
        name += TEXT_COMPRESSIONS.get((options or {}).get("compression") or "", "")
    return name


def _write_arrays_as_pairs(writer, pairs) -> None:
    for key, value in zip(pairs.keys.tolist(), pairs.values):
        writer.write(key, value.tolist() if hasattr(value, "tolist") else value)


class RawWriter:
    """``output_format="raw"``: bytes (or arrays' bytes) written exactly as the reducer yields them."""

    def __init__(self, f) -> None:
        self.f = f
        self.records = 0

    def write(self, key: Any, value: Any = None) -> None:
        """Write the value's bytes (or the key's, when the value is None) with nothing around them."""
        data = value if value is not None else key
        if isinstance(data, str):
            data = data.encode("utf-8")
        if hasattr(data, "tobytes") and not isinstance(data, (bytes, bytearray)):
            data = data.tobytes()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            from mapred.errors import RecordError
            raise RecordError(f"raw output takes bytes, got {type(data).__name__}")
        self.f.write(data)
        self.records += 1

    def write_arrays(self, pairs) -> None:
        """Write the values array's bytes in one go."""
        self.f.write(np.ascontiguousarray(pairs.values).tobytes())
        self.records += len(pairs)

    def close(self) -> None:
        """Nothing to flush: the caller closes the file."""
        pass


class TextWriter:
    """``output_format="text"``: one ``key<TAB>value`` line per pair, buffered."""

    def __init__(self, f) -> None:
        self.f = f
        self.records = 0
        self.offset = 0          # bytes handed to ``f`` so far (where the next flushed line starts)
        self.buf: list[str] = []

    def write(self, key: Any, value: Any) -> None:
        """Buffer one ``key<TAB>value`` line."""
        self.buf.append(f"{key}\n" if value is None else f"{key}\t{value}\n")
        self.records += 1
        if len(self.buf) >= 8192:
            self.flush()

    def write_arrays(self, pairs) -> None:
        """Write each pair of an ``ArrayPairs`` batch as a line."""
        _write_arrays_as_pairs(self, pairs)

    def flush(self) -> None:
        """Write the buffered lines to the file."""
        if self.buf:
            data = "".join(self.buf).encode("utf-8", errors="surrogateescape")
            self.f.write(data)
            self.offset += len(data)
            self.buf = []

    def close(self) -> None:
        """Flush what is buffered."""
        self.flush()


class MsgpackWriter(recordfile.RecordWriter):
    """``output_format="msgpack"``: a record file that reads back as typed pairs."""

    def write_arrays(self, pairs) -> None:
        """Write each pair of an ``ArrayPairs`` batch as a record."""
        _write_arrays_as_pairs(self, pairs)


def open_writer(f, fmt: str):
    """The writer for output format ``fmt`` over the open file ``f``."""
    if fmt == "msgpack":
        return MsgpackWriter(f)
    return RawWriter(f) if fmt == "raw" else TextWriter(f)


class DatasetWriter:
    """``output_format="dataset"``: the row blocks a task yields become one part of an array dataset.

    Each value is a numpy array or a tuple of row-aligned arrays (``X, y``);
    keys are ignored, and rows keep the order they were yielded in.  On close
    the blocks are stacked and written as ``.npy`` files in the part's folder;
    the job's commit lists the parts in ``_dataset.mpk``, so the output opens
    with ``mapred.load_dataset`` (or ``result.dataset()``) and feeds the next job.
    """

    def __init__(self, fs, folder: str) -> None:
        self.fs, self.folder = fs, folder
        self.blocks: list[tuple] = []
        self.records = 0

    def write(self, key: Any, value: Any) -> None:
        """Add one block of rows: the value, a numpy array or a tuple of row-aligned arrays (the key is ignored)."""
        arrays = value if isinstance(value, tuple) else (value,)
        if not arrays or not all(isinstance(a, np.ndarray) and a.ndim >= 1 for a in arrays):
            from mapred.errors import RecordError
            raise RecordError(f"dataset output takes numpy arrays (or a tuple of them) as values, got "
                              f"{type(value).__name__}")
        if len({len(a) for a in arrays}) != 1 or (self.blocks and len(arrays) != len(self.blocks[0])):
            from mapred.errors import RecordError
            raise RecordError(f"dataset output blocks must be row-aligned tuples of one arity; got shapes "
                              f"{[a.shape for a in arrays]}")
        self.blocks.append(arrays)
        self.records += len(arrays[0])

    def write_arrays(self, pairs) -> None:
        """Add a batch of rows (the values of an ``ArrayPairs``)."""
        self.write(None, pairs.values)

    def close(self) -> None:
        """Write the buffered rows as the part's arrays."""
        from mapred.io.datasets import write_part
        if not self.blocks:
            self.fs.makedirs(self.folder)
            return
        columns = [np.concatenate([b[i] for b in self.blocks]) for i in range(len(self.blocks[0]))]
        write_part(self.fs, self.folder, columns)
        self.blocks = []


class PartOutput:
    """The part one attempt writes under ``OUT/_temporary/<attempt>/``: its writer and what it owns.

    Record formats (``csv``, ``jsonl``, ``parquet``, ``avro``, ``seq``) get their
    writer from ``mapred.formats`` with the job's ``output_options``; ``bad``
    is where records the output cannot hold go (``formats.base.BadRecords``).
    ``indexed`` (a reduce part: its keys are sorted) wraps a text or msgpack
    writer in a sparse key index for the service's result lookups.
    """

    def __init__(self, output: str, attempt: str, index: int, fmt: str, options: dict | None = None,
                 bad=None, indexed: bool = False) -> None:
        fs = get_fs(output)
        options = dict(options or {})
        self.name = part_name(index, fmt, options)
        path = fs.join(temp_dir(output, attempt), self.name)
        self.f = None if fmt == "dataset" else _Counted(fs.open_write(path))
        self.inner = None
        if fmt == "dataset":
            self.writer = DatasetWriter(fs, path)
        elif fmt in RECORD_FORMATS or (fmt == "text" and options.get("compression")):
            from mapred import formats
            from mapred.formats.base import BadRecords
            from mapred.formats.compressed import compressing
            target = self.f
            if fmt in ("text", "csv", "jsonl") and options.get("compression"):
                target = self.inner = compressing(self.f, options.get("compression"))
            bad = bad if bad is not None else BadRecords("fail")
            self.writer = TextWriter(target) if fmt == "text" else formats.open_writer(fmt, target, options, bad,
                                                                                       self.name)
        else:
            self.writer = open_writer(self.f, fmt)
        if indexed and fmt in ("text", "msgpack") and self.inner is None:
            from mapred.io.keyindex import IndexedWriter
            self.writer = IndexedWriter(self.writer, fmt)
        self.write = self.writer.write
        self.write_arrays = self.writer.write_arrays

    def report(self) -> dict:
        """What the attempt reports about its output: the files, and the part's key index if it has one."""
        index = self.writer.index() if hasattr(self.writer, "index") else None
        return {"files": [self.name], **({"index": {self.name: index}} if index is not None else {})}

    def close(self) -> int:
        """Finish the part; return the bytes written (0 where the file system cannot say)."""
        self.writer.close()
        if self.inner is not None:
            self.inner.close()
        if self.f is None:
            return 0
        self.f.close()
        return self.f.written


class _Counted:
    """A file wrapper counting the bytes written: the store's writers cannot ``tell()``."""

    def __init__(self, f) -> None:
        self.f, self.written = f, 0

    def write(self, data) -> int:
        self.f.write(data)
        self.written += len(data) if not isinstance(data, memoryview) else data.nbytes
        return len(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


def temp_dir(output: str, attempt: str) -> str:
    """Where attempt ``attempt`` writes its part files before the commit renames them."""
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
        self.task_counters: dict = {}      # task id -> its committed attempt's counters, where the runner knows

    def part_files(self) -> list[str]:
        """The output's part files, in order."""
        fs = get_fs(self.path)
        if not fs.exists(fs.join(self.path, SUCCESS)):
            raise InputError(f"{self.path} holds no committed job output (no {SUCCESS})")
        return [fs.join(self.path, n) for n in fs.listdir(self.path) if n.startswith("part-")]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        fs = get_fs(self.path)
        if fs.exists(fs.join(self.path, "_dataset.mpk")):
            raise InputError(f"{self.path} is an array dataset: open it with result.dataset()")
        for path in self.part_files():
            yield from read_part(path)

    def dataset(self):
        """The output of an ``output_format="dataset"`` job, as an ``ArrayDataset``."""
        from mapred.io.datasets import load_dataset
        self.part_files()   # raises unless committed
        return load_dataset(self.path)

    def to_list(self) -> list:
        """Every output pair as a list."""
        return list(self)

    def to_dict(self) -> dict:
        """The output pairs as a dict (later parts win on repeated keys)."""
        return dict(self)

    def counter(self, group: str, name: str) -> int:
        """One counter's value (0 when the job never counted it)."""
        return self.counters.get(group, {}).get(name, 0)

    def __repr__(self) -> str:
        return f"Result({self.path!r})"


def read_part(path: str) -> Iterator[tuple[Any, Any]]:
    """The pairs of one part file, decoded by its format; a record format's records come back as ``(None, record)``
    (or as the ``(key, value)`` a ``{"key", "value"}`` record was written from)."""
    from mapred.formats import infer
    fmt = infer(path)
    if fmt not in ("text", "records", "ztext"):
        from mapred.formats import read_file
        from mapred.formats.base import as_pair
        for key, record in read_file(path, fmt):
            yield (key, record) if fmt == "seq" else as_pair(record)
        return
    if fmt == "ztext":
        from mapred.formats.compressed import view
        with view(path).open() as f:
            lines = f.read().split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for raw in lines:
            key, tab, value = raw.decode("utf-8", errors="surrogateescape").partition("\t")
            yield key, (value if tab else None)
        return
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
    """Write ``_SUCCESS`` with the job's id, name and counters: the mark of a complete output."""
    fs = get_fs(output)
    with fs.open_write(fs.join(output, SUCCESS)) as f:
        f.write(json.dumps(info, sort_keys=True, default=str).encode())
