"""Parquet (pyarrow): row groups as splits, column projection, predicate pushdown, numpy blocks.

The planner reads only the footer: a split is a run of row groups of about
``split_size`` compressed bytes, placed on the hosts of its first column
chunk's block.  ``columns=[...]`` reads only those columns; ``filters=[(col,
op, value), ...]`` (a conjunction; ops ``== != < <= > >= in``) drops every row
group whose min/max statistics exclude it *at planning* (the
``formats/row_groups_pruned`` counter says how many) and then filters the
rows that remain, so the result is exact.  With ``record="array"`` (or
``"columns"``, or ``"arrow"``) a ``map_batch`` gets each row group as one 2-D
float block (a dict of numpy columns, a ``pyarrow.Table``) made without
Python per row; otherwise records are dicts (``"dict"``) or tuples (``"row"``).

The writer infers a schema from the first records (or takes one given),
checks every record against it — pyarrow would silently truncate ``2.5``
into an int column — and writes row groups of ``row_group_rows`` rows.  A
job's Parquet output is a directory of ``part-NNNNN.parquet`` that
``pyarrow.dataset``, Spark or DuckDB read as one table.
"""
from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from mapred.errors import ConfigError
from mapred.formats import schema as schemamod
from mapred.formats.base import (
    FormatError,
    SchemaError,
    Tell,
    as_record,
    hosts_at,
    make_split,
    split_options,
)
from mapred.io.fs import get_fs

NAME = "parquet"
EXTENSIONS = (".parquet", ".pq", ".parq")
RECORD_KINDS = ("dict", "row", "array", "columns", "arrow")
OPS = ("==", "=", "!=", "<", "<=", ">", ">=", "in")


def _open(path: str):
    import pyarrow.parquet as pq
    f = get_fs(path).open_read(path)
    try:
        return pq.ParquetFile(f), f
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
        f.close()
        raise FormatError(path, f"not a readable Parquet file (cut short, or its footer is damaged): {exc}",
                          offset=0) from None


def _check_filters(filters, names: list, path: str) -> list:
    out = []
    for item in filters or ():
        if len(item) != 3 or item[1] not in OPS:
            raise ConfigError(f"a Parquet filter is (column, op, value) with op in {OPS}, got {item!r}")
        col, op, value = item
        if col not in names:
            raise ConfigError(f"filter column {col!r} is not in {path}'s columns {names}")
        out.append([col, "==" if op == "=" else op, list(value) if op == "in" else value])
    return out


def plan(path: str, split_size: int, options: dict) -> list:
    pf, f = _open(path)
    try:
        md = pf.metadata
        names = pf.schema_arrow.names
        columns = options.get("columns")
        if columns:
            missing = [c for c in columns if c not in names]
            if missing:
                raise ConfigError(f"column {missing[0]!r} is not in {path}'s columns {names}")
        filters = _check_filters(options.get("filters"), names, path)
        kind = options.get("record", "dict")
        if kind not in RECORD_KINDS:
            raise ConfigError(f"Parquet record must be one of {RECORD_KINDS}, got {kind!r}")
        col_index = {md.schema.column(i).path: i for i in range(md.num_columns)}
        kept, pruned, first_row, rows_before = [], 0, [], 0
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            first_row.append(rows_before)
            rows_before += rg.num_rows
            if filters and _excluded(rg, filters, col_index):
                pruned += 1
                continue
            kept.append(i)
    finally:
        f.close()
    blocks = get_fs(path).block_locations(path, 1 << 62)
    base = {"columns": list(columns) if columns else None, "filters": filters, "record": kind}
    splits, group, size = [], [], 0
    for i in kept:
        rg = md.row_group(i)
        group.append(i)
        size += rg.total_byte_size
        if size >= split_size:
            splits.append(group)
            group, size = [], 0
    if group:
        splits.append(group)
    out = []
    for n, g in enumerate(splits):
        start = _offset(md.row_group(g[0]))
        last = md.row_group(g[-1])
        opts = {**base, "row_groups": g, "first_rows": [first_row[i] for i in g]}
        if n == 0 and pruned:
            opts["pruned"] = pruned
        out.append(make_split(NAME, path, start, _offset(last) + last.total_byte_size, hosts_at(blocks, start), opts))
    if not out:   # every row group pruned (or none at all): one empty split keeps the file visible
        out.append(make_split(NAME, path, 0, 0, hosts_at(blocks, 0), {**base, "row_groups": [], "first_rows": [],
                                                                      "pruned": pruned}))
    return out


def _offset(rg) -> int:
    c = rg.column(0)
    return int(c.dictionary_page_offset or c.data_page_offset or 0) if c.has_dictionary_page \
        else int(c.data_page_offset or 0)


def _excluded(rg, filters, col_index) -> bool:
    """Whether the row group's statistics prove no row passes the filters."""
    for col, op, value in filters:
        j = col_index.get(col)
        if j is None:
            continue
        st = rg.column(j).statistics
        if st is None or not st.has_min_max:
            continue
        lo, hi = st.min, st.max
        try:
            if op == "==" and (value < lo or value > hi):
                return True
            if op == "<" and not lo < value:
                return True
            if op == "<=" and not lo <= value:
                return True
            if op == ">" and not hi > value:
                return True
            if op == ">=" and not hi >= value:
                return True
            if op == "in" and all(v < lo or v > hi for v in value):
                return True
            if op == "!=" and lo == hi == value and st.null_count == 0:
                return True
        except TypeError:
            continue   # a value that does not compare with the column's type: no pruning
    return False


_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge, "in": lambda field, value: field.isin(value)}


def _expression(filters):
    """The filters as one pyarrow compute expression (their conjunction)."""
    import pyarrow.compute as pc
    expr = None
    for col, op, value in filters:
        e = _COMPARE[op](pc.field(col), value)
        expr = e if expr is None else expr & e
    return expr


class Reader:
    def __init__(self, split, meter, bad) -> None:
        self.split, self.meter, self.bad = split, meter, bad
        self.opts = split_options(split)
        self.kind = self.opts.get("record", "dict")
        self.notes: dict = {"row_groups_pruned": self.opts["pruned"]} if self.opts.get("pruned") else {}

    def tables(self) -> Iterator[tuple[int, Any]]:
        """``(first row, pyarrow.Table)`` per row group, projected and filtered."""
        s = self.split
        if not self.opts.get("row_groups"):
            return
        pf, f = _open(s.path)
        filters = self.opts.get("filters") or []
        columns = self.opts.get("columns")
        read_cols = None
        if columns:
            read_cols = list(dict.fromkeys(list(columns) + [c for c, _, _ in filters]))
        expr = _expression(filters) if filters else None
        try:
            for i, first in zip(self.opts["row_groups"], self.opts["first_rows"]):
                try:
                    table = pf.read_row_group(i, columns=read_cols)
                except Exception as exc:  # noqa: BLE001 - a damaged page or column chunk
                    self.bad.add(FormatError(s.path, f"row group {i} does not decode ({exc})", split=s.index,
                                             row=first, record=f"<row group {i}>"))
                    continue
                self.meter.bytes_read += pf.metadata.row_group(i).total_byte_size
                if expr is not None:
                    table = table.filter(expr)
                if columns and read_cols != list(columns):
                    table = table.select(list(columns))
                yield first, table
        finally:
            f.close()

    def records(self) -> Iterator[tuple[int, Any]]:
        for first, table in self.tables():
            rows = table.to_pylist() if self.kind != "row" else list(zip(*[c.to_pylist() for c in table.columns]))
            yield from zip(range(first, first + len(rows)), rows)

    def batches(self, size: int) -> Iterator[tuple[int, Any]]:
        for first, table in self.tables():
            if self.kind == "arrow":
                yield first, table
            elif self.kind == "columns":
                yield first, {name: _numpy(col) for name, col in zip(table.column_names, table.columns)}
            elif self.kind == "array":
                yield first, to_block(table, self.split.path)
            else:
                for i in range(0, table.num_rows, size):
                    part = table.slice(i, size)
                    rows = part.to_pylist() if self.kind == "dict" else \
                        list(zip(*[c.to_pylist() for c in part.columns]))
                    yield first + i, rows


def _numpy(col) -> np.ndarray:
    """A column as numpy: zero-copy for null-free numbers; nulls become NaN in float columns."""
    import pyarrow.types as pt
    if col.null_count and (pt.is_integer(col.type) or pt.is_floating(col.type)):
        return col.to_numpy(zero_copy_only=False).astype(np.float64)
    return col.to_numpy(zero_copy_only=False)


def to_block(table, path: str = "") -> np.ndarray:
    """A table of numeric columns as one 2-D float64 block (column-wise copies, no per-row Python)."""
    import pyarrow.types as pt
    bad = [f.name for f in table.schema if not (pt.is_integer(f.type) or pt.is_floating(f.type)
                                                or pt.is_boolean(f.type))]
    if bad:
        raise ConfigError(f"{path}: record='array' needs numeric columns; {bad[0]!r} is not (use columns=...)")
    out = np.empty((table.num_rows, table.num_columns), dtype=np.float64)
    for j, col in enumerate(table.columns):
        out[:, j] = _numpy(col)
    return out


# ----------------------------------------------------------------------------- writing
COMPRESSIONS = ("snappy", "zstd", "gzip", "lz4", "brotli", "none")


class RecordChecker:
    """Checks records against a schema quickly: one type test per field, nested values by ``schema.check``."""

    _PY: ClassVar[dict] = {"int": (int,), "float": (float, int), "str": (str,), "bool": (bool,), "bytes": (bytes, bytearray),
           "null": ()}

    def __init__(self, sch: schemamod.Schema) -> None:
        self.schema = sch
        self.names = set(sch.names)
        self.simple = [(f.name, self._PY[f.type]) for f in sch.fields if not isinstance(f.type, tuple)]
        self.nested = [(f.name, f.type) for f in sch.fields if isinstance(f.type, tuple)]
        self.ints = [f.name for f in sch.fields if f.type in ("int", "float")]

    def problem(self, rec) -> str | None:
        if type(rec) is not dict:
            return f"a {type(rec).__name__} is not a record (a dict)"
        if len(rec) > len(self.names) or not rec.keys() <= self.names:
            return schemamod.misfit(rec, self.schema)
        for name, types in self.simple:
            v = rec.get(name)
            if v is not None and type(v) not in types and (
                    not isinstance(v, types) or isinstance(v, bool) and bool not in types):
                return schemamod.misfit(rec, self.schema) or f"field {name!r} does not fit"
        for name, t in self.nested:
            if not schemamod.check(rec.get(name), t):
                return schemamod.misfit(rec, self.schema)
        for name in self.ints:
            v = rec.get(name)
            if type(v) is int and not -(1 << 63) <= v < (1 << 63):
                return f"field {name!r} = {v} does not fit in 64 bits"
        return None


class Writer:
    def __init__(self, f, options: dict, bad, part: str = "") -> None:
        self.f, self.bad, self.part = Tell(f), bad, part
        self.schema = schemamod.parse(options.get("schema"))
        self.compression = options.get("compression") or "snappy"
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"Parquet compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        self.rows_per_group = int(options.get("row_group_rows", 128 * 1024))
        self.buf: list = []
        self.writer = None
        self.checker = RecordChecker(self.schema) if self.schema else None
        self.records = 0

    def write(self, key, value) -> None:
        if _is_table(value):
            self._write_table(value)
            return
        if isinstance(value, (tuple, list)) and self.schema and len(value) == len(self.schema.fields):
            value = dict(zip(self.schema.names, value))
        self.buf.append(as_record(key, value))
        if len(self.buf) >= self.rows_per_group:
            self.flush()

    def write_arrays(self, pairs) -> None:
        import pyarrow as pa
        vals = pairs.values
        cols = {"key": pa.array(pairs.keys)}
        if vals.ndim == 1:
            cols["value"] = pa.array(vals)
        else:
            cols["value"] = pa.array(list(vals))
        self._write_table(pa.table(cols))

    def _write_table(self, table) -> None:
        """A whole ``pyarrow.Table`` (or batch) as row groups: the Arrow fast path, no Python per row."""
        import pyarrow as pa
        if self.buf:
            self.flush()
        if not hasattr(table, "to_batches"):
            table = pa.Table.from_batches([table])
        if self.schema is None:
            self.schema = schemamod.from_arrow(table.schema)
            self.checker = RecordChecker(self.schema)
            self.arrow_schema = table.schema        # keep the input's own types (timestamps, int32, ...)
        target = getattr(self, "arrow_schema", None) or schemamod.to_arrow(self.schema)
        try:
            table = table.select(target.names).cast(target)
        except Exception as exc:  # noqa: BLE001 - a column the schema cannot hold
            raise SchemaError(f"a table does not fit the output schema ({exc})", table.schema, self.part) from None
        self._writer(target).write_table(table)
        self.records += table.num_rows

    def _writer(self, arrow_schema):
        if self.writer is None:
            import pyarrow.parquet as pq
            self.writer = pq.ParquetWriter(self.f, arrow_schema,
                                           compression=None if self.compression == "none" else self.compression)
        return self.writer

    def flush(self) -> None:
        if not self.buf:
            return
        import pyarrow as pa
        records, self.buf = self.buf, []
        if self.schema is None:
            try:
                self.schema = schemamod.infer(r for r in records if isinstance(r, dict))
            except ConfigError as exc:
                raise SchemaError(f"no schema fits the first records ({exc}); give one", records[0],
                                  self.part) from None
            self.checker = RecordChecker(self.schema)
        problem = self.checker.problem
        good = []
        for r in records:
            why = problem(r)
            if why is None:
                good.append(r)
            else:
                self.bad.add(SchemaError(why, r, self.part))
        if not good:
            return
        arrow_schema = getattr(self, "arrow_schema", None) or schemamod.to_arrow(self.schema)
        self._writer(arrow_schema).write_table(pa.Table.from_pylist(good, schema=arrow_schema))
        self.records += len(good)

    def close(self) -> None:
        self.flush()
        if self.writer is None:
            import pyarrow as pa
            sch = getattr(self, "arrow_schema", None) or (schemamod.to_arrow(self.schema) if self.schema
                                                          else pa.schema([]))
            self._writer(sch)
        self.writer.close()


def _is_table(value) -> bool:
    return type(value).__name__ in ("Table", "RecordBatch") and type(value).__module__.startswith("pyarrow")


def read_table(path: str, columns=None):
    """A whole Parquet file (or a job's output directory of them) as one ``pyarrow.Table``."""
    import pyarrow as pa
    fs = get_fs(path)
    files = [p for p in fs.expand(path) if p.endswith(EXTENSIONS)]
    tables = []
    for p in files:
        pf, f = _open(p)
        try:
            tables.append(pf.read(columns=columns))
        finally:
            f.close()
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
