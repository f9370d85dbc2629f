"""Format conversion and data set splits, as jobs: ``mapred convert`` and ``mapred split``.

``convert`` is the founding document's conversion step ("text files into
sequence files"): a map-only job whose maps read any input format and whose
parts are written in the target format, so it runs on the local runner or a
cluster alike and is committed like any job output.  CSV or Parquet to
Parquet moves whole Arrow tables (no Python per row) unless bad records are
being skipped, which needs the per-record path.

``split`` divides a data set into N parts (or parts by weights, e.g. train /
validation / test) by a hash of each record's *location* (file and offset
or row) and a seed, so the split is the same for any split size and any
number of workers; ``_index.json`` beside the parts lists each part's
record count.
"""
from __future__ import annotations

import json
from collections import Counter

import xxhash

from mapred.errors import ConfigError
from mapred.job import Job

TARGETS = ("csv", "jsonl", "parquet", "avro", "seq", "text", "msgpack")
INDEX = "_index.json"


def _records(key, value):
    yield key, value


def _tables(batch):
    yield None, batch


def _lines(key, value):
    if isinstance(value, str):
        yield value, None
    else:
        yield json.dumps(value, ensure_ascii=False, default=str), None


def _output_options(to: str, schema, compression, extra: dict | None) -> dict:
    opts = dict(extra or {})
    if schema is not None:
        opts["schema"] = schema
    if compression is not None:
        opts["compression"] = compression
    if to in ("text", "csv", "jsonl") and compression not in (None, "none", "gzip", "bzip2", "zstd"):
        raise ConfigError(f"{to} output compresses with gzip, bzip2 or zstd, not {compression!r}")
    return opts


def convert_job(to: str, *, schema=None, compression=None, input_format: str | None = None,
                input_options: dict | None = None, output_options: dict | None = None,
                bad_records: str = "fail", fast: bool = True) -> Job:
    """The map-only job that rewrites its input as ``to``."""
    if to not in TARGETS:
        raise ConfigError(f"--to must be one of {TARGETS}, got {to!r}")
    in_opts = dict(input_options or {})
    out_opts = _output_options(to, schema, compression, output_options)
    arrow = fast and to == "parquet" and bad_records == "fail" and input_format in ("parquet", "csv") \
        and in_opts.get("record") in (None, "dict")
    if arrow:
        in_opts["record"] = "arrow"
        return Job(map_batch=_tables, output_format=to, name=f"convert-to-{to}", input_format=input_format,
                   input_options=in_opts, output_options=out_opts, bad_records=bad_records)
    mapper = _lines if to == "text" else _records
    return Job(mapper=mapper, output_format=to, name=f"convert-to-{to}", input_format=input_format,
               input_options=in_opts, output_options=out_opts, bad_records=bad_records)


def _single_format(inputs) -> str | None:
    """The one format every input path has, when they agree (for the Arrow fast path)."""
    from mapred import formats
    from mapred.io.fs import get_fs
    found = set()
    for item in [inputs] if isinstance(inputs, str) else list(inputs):
        for p in get_fs(str(item)).expand(str(item)):
            found.add(formats.infer(p))
    return found.pop() if len(found) == 1 else None


def convert(inputs, output: str, to: str, *, schema=None, compression=None, input_format: str | None = None,
            input_options: dict | None = None, output_options: dict | None = None, bad_records: str = "fail",
            overwrite: bool = False, workers: int | None = None, cluster=None, progress=None):
    """Rewrite ``inputs`` (any readable format) as ``to`` under ``output``; returns the job's ``Result``.

    ``schema``: the output schema (``"id:int,name:str"``, an Avro schema, a
    JSON file); inferred from each task's first records when not given.
    ``compression``: the codec of the target (Parquet ``snappy|zstd|gzip|none``,
    Avro ``deflate|zstandard|snappy|null``, seq ``lz4|zstd|none``, text
    formats ``gzip|bzip2|zstd``).
    """
    from mapred.formats import INPUT_FORMATS
    fmt = input_format or _single_format(inputs)
    job = convert_job(to, schema=schema, compression=compression,
                      input_format=fmt if fmt in INPUT_FORMATS else input_format,
                      input_options=input_options, output_options=output_options, bad_records=bad_records)
    return job.run(inputs, output, overwrite=overwrite, workers=workers, cluster=cluster, progress=progress)


# ----------------------------------------------------------------------------- split
def _weights(parts: int | None, weights) -> list[float]:
    if weights:
        w = [float(x) for x in weights]
        if any(x < 0 for x in w) or sum(w) <= 0:
            raise ConfigError(f"split weights must be non-negative and not all zero, got {weights!r}")
        return w
    if not parts or parts < 1:
        raise ConfigError("split needs parts >= 1 or weights")
    return [1.0] * parts


def _part_of(ctx_path: str, key, seed: int, bounds: list) -> int:
    h = xxhash.xxh64_intdigest(f"{seed}\x00{ctx_path}\x00{key!r}".encode()) / 2.0 ** 64
    for i, b in enumerate(bounds):
        if h < b:
            return i
    return len(bounds) - 1


def _split_mapper_for(bounds: list, seed: int):
    def mapper(key, value):
        from mapred.taskcontext import context
        ctx = context()
        path = ctx.split.path
        part = _part_of(path, key, seed, bounds)
        counts = ctx.state.setdefault("parts", Counter())
        counts[part] += 1
        yield (part, path, key), value

    def final():
        from mapred.taskcontext import context, counter
        for part, n in context().state.pop("parts", {}).items():
            counter("split", f"part-{part:05d}", n)
        return ()
    return mapper, final


def _by_part(key, n):
    return key[0]


def _write_values(key, values):
    for v in values:
        yield None, v


def split(inputs, output: str, parts: int | None = None, *, weights=None, names=None, seed: int = 0,
          to: str = "parquet", schema=None, compression=None, input_format: str | None = None,
          input_options: dict | None = None, bad_records: str = "fail", overwrite: bool = False,
          workers: int | None = None, cluster=None, progress=None) -> dict:
    """Split a data set into parts (``part-00000`` ...) by a seeded hash of each record's location.

    Returns the index written to ``OUT/_index.json``: the parts with their
    names and record counts, the seed and the weights.
    """
    w = _weights(parts, weights)
    total = sum(w)
    bounds, acc = [], 0.0
    for x in w:
        acc += x / total
        bounds.append(acc)
    bounds[-1] = 1.0
    if names is not None and len(names) != len(w):
        raise ConfigError(f"split has {len(w)} parts but {len(names)} names")
    mapper, final = _split_mapper_for(bounds, seed)
    job = Job(mapper=mapper, mapper_final=final, reducer=_write_values, num_reducers=len(w),
              partitioner=_by_part, output_format=to, name="split", input_format=input_format,
              input_options=input_options, output_options=_output_options(to, schema, compression, None),
              bad_records=bad_records)
    result = job.run(inputs, output, overwrite=overwrite, workers=workers, cluster=cluster, progress=progress)
    from mapred.io.fs import get_fs
    from mapred.io.outputs import part_name
    counts = result.counters.get("split", {})
    index = {"seed": seed, "weights": w, "total": sum(counts.values()), "parts": [
        {"name": (names[i] if names else f"part-{i:05d}"), "file": part_name(i, to, {"compression": compression}),
         "records": int(counts.get(f"part-{i:05d}", 0))} for i in range(len(w))]}
    fs = get_fs(output)
    with fs.open_write(fs.join(output, INDEX)) as f:
        f.write(json.dumps(index, indent=2).encode())
    return index
