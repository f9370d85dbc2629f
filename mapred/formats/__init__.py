"""Data formats: CSV, JSON lines, Parquet, Avro, the mapred sequence file, compressed text.

One module per format, each with a planner (``plan``: a file's splits), a
``Reader`` (a split's records or batches) and a ``Writer`` (one part of a
job's output).  This module is the registry the engine asks: which format a
path has (``infer``), the splits of a file (``plan``), what a map task
iterates (``map_source``) and which writer a part gets (``open_writer``).
Formats load lazily, so pyarrow and fastavro are imported only by jobs that
read or write Parquet or Avro.
"""
from __future__ import annotations

import importlib

from mapred.errors import ConfigError

_MODULES = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "avro": "avro", "seq": "seq",
            "ztext": "compressed"}
#: what ``input_format=`` accepts (``text`` and ``records`` are the engine's own)
INPUT_FORMATS = ("text", "records", "csv", "jsonl", "parquet", "avro", "seq")   # = mapred.job.INPUT_FORMATS
#: the record formats ``output_format=`` accepts besides the engine's own
OUTPUT_FORMATS = ("csv", "jsonl", "parquet", "avro", "seq")
SPLIT_FORMATS = tuple(_MODULES)
SUFFIXES = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "avro": ".avro", "seq": ".seq"}
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl",
               ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet", ".avro": "avro", ".seq": "seq",
               ".mpk": "records", ".msgpack": "records"}


def module(fmt: str):
    """The module of a format (imported on first use)."""
    name = _MODULES.get(fmt)
    if name is None:
        raise ConfigError(f"unknown data format {fmt!r} (known: {', '.join(INPUT_FORMATS)})")
    return importlib.import_module(f"mapred.formats.{name}")


def infer(path: str) -> str:
    """The format of a file by its extension: ``text`` when nothing else fits.

    A compressed file (``.gz``, ``.bz2``, ``.zst``) has the format of its inner
    name (``a.jsonl.gz`` is JSON lines); plain compressed text is ``ztext``.
    """
    from mapred.formats.compressed import codec_of, inner_name
    inner = inner_name(path)
    low = inner.lower()
    for ext, fmt in _EXTENSIONS.items():
        if low.endswith(ext):
            if codec_of(path) and fmt not in ("csv", "jsonl"):
                raise ConfigError(f"{path}: a compressed {fmt} file cannot be read; decompress it first")
            return fmt
    return "ztext" if codec_of(path) else "text"


def check_input_format(fmt) -> None:
    if fmt is not None and fmt not in INPUT_FORMATS:
        raise ConfigError(f"input_format must be one of {INPUT_FORMATS}, got {fmt!r}")


def plan(path: str, fmt: str, split_size: int, options: dict | None, bad_records: str = "fail") -> list:
    """The splits of one file in format ``fmt`` (``index`` 0: the caller numbers them).

    A file its planner cannot read (a Parquet file cut short has no footer, an
    Avro or sequence file a bad header) raises the ``FormatError`` naming it;
    when bad records are skipped it becomes one quarantined split instead,
    whose map task lists the file under ``_bad_records/`` and reads nothing.
    """
    from mapred.formats.base import FormatError, quarantined_split
    try:
        return module(fmt).plan(path, split_size, dict(options or {}))
    except FormatError as exc:
        if bad_records != "skip":
            raise
        return [quarantined_split(fmt, path, exc)]


def open_reader(split, meter, bad, errors: str = "strict"):
    from mapred.formats.base import Quarantined, split_options
    if split_options(split).get("quarantined"):
        return Quarantined(split, meter, bad)
    mod = module(split.fmt)
    if split.fmt == "ztext":
        return mod.Reader(split, meter, bad, errors)
    return mod.Reader(split, meter, bad)


def map_source(split, meter, bad, batched: bool, batch_size: int, input_mode: str = "lines",
               errors: str = "strict"):
    """``(iterable, batched)`` for a map task over a format split, and the reader (for its notes)."""
    reader = open_reader(split, meter, bad, errors)
    if split.fmt == "ztext" and hasattr(reader, "byte_blocks"):
        if batched and input_mode == "bytes":
            return reader.byte_blocks(), True, reader
        if batched and input_mode == "text":
            return reader.string_blocks(), True, reader
    if batched:
        return reader.batches(batch_size), True, reader
    return reader.records(), False, reader


def open_writer(fmt: str, f, options: dict | None, bad, part: str = ""):
    return module(fmt).Writer(f, dict(options or {}), bad, part)


def read_file(path: str, fmt: str | None = None, **options):
    """Every record of one file (or directory of parts) in order: ``(key, record)`` pairs, in this process."""
    from mapred.formats.base import BadRecords, Meter
    from mapred.io.fs import get_fs
    fs = get_fs(path)
    bad = BadRecords(options.pop("bad_records", "fail"))
    for p in fs.expand(path):
        f = fmt or infer(p)
        if f in ("text", "records"):
            raise ConfigError(f"{p}: read_file reads the record formats, not {f}")
        for split in plan(p, f, 1 << 62, options):
            yield from open_reader(split, Meter(), bad).records()
