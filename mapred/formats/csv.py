"""CSV: a header, a delimiter, RFC 4180 quoting; records as dicts, rows or numpy blocks.

Splitting a CSV file is only safe at a *record* boundary, and a newline inside
a quoted field is not one.  The planner decides each block boundary by a probe
of the bytes after it: it follows both readings (the boundary is outside, or
inside, a quoted field) until one breaks the quoting rules (an opening quote
not at a field start, a closing quote not followed by a delimiter or
newline, a quoted field open at the end of the file).  A window with no quote
at all is read as outside quotes; the split before it then *checks* that
guess, since it must end exactly on a record boundary, and a wrong guess is an
error naming the offset (read that file with ``split=False``), never a silent
misparse.  When both readings break (bare quotes inside unquoted fields) or
none does within ``probe_bytes``, the file is read unsplit by Python's csv
module, which the split's note and the ``formats/unsplit_files`` counter say.

Column types are given (``types={"id": "int"}`` or ``schema="id:int,..."``) or
inferred from the first rows.  Nulls follow pyarrow (``strings_can_be_null``,
``quoted_strings_can_be_null=False``) and pandas: an *unquoted* field equal to
one of ``null_values`` (default ``[""]``) is ``None`` in every column, a
quoted one never is, so ``,,`` is a null and ``,"",`` the empty string; an
empty field, quoted or not, is null in a non-str column.  The writer writes
``None`` as an empty field and quotes ``""`` (and any string equal to a null
value), so both round-trip.  A row with the wrong number of fields, or a value
that does not parse as its column's type, is a bad record naming the file,
split and byte offset.
"""
from __future__ import annotations

import csv as pycsv
import io
import itertools
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from mapred.errors import ConfigError
from mapred.formats import schema as schemamod
from mapred.formats.base import (
    FormatError,
    SchemaError,
    hosts_at,
    make_split,
    split_options,
)
from mapred.formats.compressed import view

NAME = "csv"
EXTENSIONS = (".csv", ".tsv")
RECORD_KINDS = ("dict", "row", "array", "arrow")
PROBE_BYTES = 1 << 20
MAX_PROBE_BYTES = 8 << 20
SAMPLE_BYTES = 1 << 20
SAMPLE_ROWS = 1000
CHUNK = 4 << 20


def null_values(options: dict) -> list:
    """The strings that are null when they stand unquoted in a field (pyarrow's ``null_values``)."""
    given = options.get("null_values", [""])
    if isinstance(given, str) or not all(isinstance(v, str) for v in given):
        raise ConfigError(f"CSV null_values must be a list of strings, got {given!r}")
    return list(given)


def _dialect(options: dict, path: str = "") -> tuple[str, str]:
    delim = options.get("delimiter") or ("\t" if path.endswith(".tsv") else ",")
    quote = options.get("quotechar", '"')
    if len(delim) != 1 or len(quote) != 1:
        raise ConfigError(f"CSV delimiter and quotechar must be one character, got {delim!r} and {quote!r}")
    return delim, quote


# ----------------------------------------------------------------------------- planning
def plan(path: str, split_size: int, options: dict) -> list:
    """Record-aligned byte splits of one CSV file, with its column names and types in every split."""
    opts = dict(options)
    if opts.get("record", "dict") not in RECORD_KINDS:
        raise ConfigError(f"CSV record must be one of {RECORD_KINDS}, got {opts.get('record')!r}")
    delim, quote = _dialect(opts, path)
    opts.update(delimiter=delim, quotechar=quote, null_values=null_values(opts))
    v = view(path, split_size)
    size = v.size
    with v.open() as f:
        head = f.read(min(size, SAMPLE_BYTES))
        names, data_start, sample = _header_and_sample(head, size, opts, path)
        opts["names"] = names
        opts["types"] = _types(names, sample, opts)
        if not v.splittable:
            note = f"{v.codec} input is not splittable: read whole"
            return [make_split(NAME, path, data_start, size, v.blocks[0][2], {**opts, "note": note, "stream": True})]
        if not opts.get("split", True) or size <= data_start:
            return [_whole(path, data_start, size, opts, "")]
        blocks = v.blocks
        starts = [data_start]
        for b, _, _ in blocks[1:]:
            if b <= starts[-1]:
                continue
            r = resolve_boundary(f, b, size, delim.encode(), quote.encode(), opts.get("probe_bytes", PROBE_BYTES),
                                 opts.get("max_probe_bytes", MAX_PROBE_BYTES))
            if r is None:
                return [_whole(path, data_start, size, opts,
                               f"quoting near byte offset {b} leaves the record boundary undecidable: read unsplit")]
            if r > starts[-1] and r < size:
                starts.append(r)
    bounds = starts + [size]
    return [make_split(NAME, path, a, z, hosts_at(blocks, a), opts) for a, z in itertools.pairwise(bounds)]


def column_names(path: str, header: bool = True, delimiter: str = ",") -> list:
    """The column names the reader gives ``path`` (its header row, or ``c0, c1, ...`` by width)."""
    opts = {"header": header, "delimiter": delimiter, "quotechar": '"'}
    v = view(path)
    with v.open() as f:
        head = f.read(min(v.size, SAMPLE_BYTES))
    return _header_and_sample(head, v.size, opts, path)[0]


def _whole(path: str, start: int, size: int, opts: dict, note: str):
    opts = {**opts, "note": note} if note else opts
    if note:
        opts["stream"] = True
    return make_split(NAME, path, start, size, view(path).blocks[0][2], opts)


def _header_and_sample(head: bytes, size: int, opts: dict, path: str) -> tuple[list, int, list]:
    delim, quote = opts["delimiter"], opts["quotechar"]
    text = head.decode("utf-8", errors="replace")
    if len(head) < size:   # drop the partial last line of the sample
        text = text[:text.rfind("\n") + 1] if "\n" in text else text
    reader = pycsv.reader(io.StringIO(text, newline=""), delimiter=delim, quotechar=quote)
    rows = list(itertools.islice(reader, SAMPLE_ROWS + 1))
    header = opts.get("header", True)
    given = opts.get("columns")
    data_start = 0
    if header:
        if not rows:
            return list(given or []), size, []
        data_start = _end_of_first_record(head, quote.encode())
        names = list(given) if given else rows[0]
        rows = rows[1:]
    else:
        width = len(rows[0]) if rows else 0
        names = list(given) if given else [f"c{i}" for i in range(width)]
    if len(set(names)) != len(names):
        raise FormatError(path, f"the CSV header names a column twice: {names}", offset=0)
    return names, data_start, rows


def _end_of_first_record(data: bytes, quote: bytes) -> int:
    inside = False
    for i, b in enumerate(data):
        if b == quote[0]:
            inside = not inside
        elif b == 10 and not inside:
            return i + 1
    return len(data)


def _types(names: list, sample: list, opts: dict) -> list:
    given = opts.get("types") or {}
    if isinstance(given, (str, schemamod.Schema)) or (isinstance(given, (list, tuple)) and given
                                                       and isinstance(given[0], (list, tuple))):
        parsed = schemamod.parse(given)
        given = {f.name: f.type for f in parsed.fields}
    elif isinstance(given, (list, tuple)):
        given = dict(zip(names, given))
    unknown = [n for n in given if n not in names]
    if unknown and names:
        raise ConfigError(f"CSV types name column {unknown[0]!r}, which is not among {names}")
    out = []
    for i, name in enumerate(names):
        if name in given:
            out.append(schemamod._type_name(given[name]))
        elif opts.get("record") == "array":
            out.append("float")
        elif opts.get("infer", True):
            nulls = set(opts.get("null_values", [""]))
            out.append(schemamod.infer_text(r[i] for r in sample if len(r) == len(names) and r[i] not in nulls))
        else:
            out.append("str")
    return out


def resolve_boundary(f, b: int, size: int, delim: bytes, quote: bytes, probe: int,
                     max_probe: int = MAX_PROBE_BYTES) -> int | None:
    """The first record start at or after byte ``b``, or ``None`` when quoting leaves it undecidable."""
    window = probe
    while True:
        f.seek(b - 1)
        data = f.read(window + 1)
        while data[:1] == quote:   # a quote just before b may be half of a doubled "": start past it
            b, data = b + 1, data[1:]
        at_eof = b - 1 + len(data) >= size
        if len(data) <= 1:
            return size
        if quote not in data:
            nl = data.find(b"\n")
            return b + nl if nl >= 0 else size
        verdicts = [_follow(data, inside, delim[0], quote[0], at_eof) for inside in (False, True)]
        alive = [v for v in verdicts if v is not None]
        if len(alive) == 1 and alive[0] >= 0:
            return b - 1 + alive[0]
        if len(alive) == 1 and at_eof:
            return size
        if not alive or window >= max_probe or at_eof:
            return None
        window *= 4


def _follow(data: bytes, inside: bool, delim: int, quote: int, at_eof: bool) -> int | None:
    """Follow one reading of ``data`` (``data[0]`` is the byte before the boundary).

    Returns the index just after the first record-ending newline, ``-1`` when
    the reading holds to the end of the window without one, or ``None`` when
    the reading breaks the quoting rules.
    """
    first = -1
    i, n = 1, len(data)
    while True:
        nl = data.find(b"\n", i) if (not inside and first < 0) else -1
        q = data.find(quote, i)
        if nl >= 0 and (q < 0 or nl < q):
            first = i = nl + 1
            continue
        if q < 0:
            break
        if not inside:
            if data[q - 1] not in (delim, 10, 13):
                return None          # an opening quote must start a field
            inside, i = True, q + 1
            continue
        if q + 1 >= n:
            if not at_eof:
                break                # the next byte is past the window: no verdict yet
            inside, i = False, q + 1
            continue
        nxt = data[q + 1]
        if nxt == quote:
            i = q + 2                # a doubled quote inside a quoted field
            continue
        if nxt not in (delim, 10, 13):
            return None              # a closing quote must end a field
        inside, i = False, q + 1
    if inside and at_eof:
        return None                  # a quoted field open at the end of the file
    return first


# ----------------------------------------------------------------------------- reading
class Reader:
    """Records of one CSV split: ``(byte offset, record)`` or blocks of them."""

    def __init__(self, split, meter, bad) -> None:
        self.split, self.meter, self.bad = split, meter, bad
        self.opts = split_options(split)
        self.names = self.opts["names"]
        self.types = self.opts["types"]
        self.kind = self.opts.get("record", "dict")
        self.delim, self.quote = self.opts["delimiter"], self.opts["quotechar"]
        self.nulls = frozenset(self.opts.get("null_values", [""]))
        self.notes: dict = {"unsplit_files": 1} if self.opts.get("note") else {}

    # -- raw records: (offset, text) -------------------------------------------------
    def _byte_chunks(self) -> Iterator[tuple[int, bytes]]:
        """``(offset, bytes)`` chunks of about ``CHUNK`` bytes, each a run of whole records."""
        s = self.split
        q = ord(self.quote)
        with view(s.path).open() as f:
            f.seek(s.start)
            pos, carry = s.start, b""
            while pos < s.end:
                data = f.read(min(CHUNK, s.end - pos))
                if not data:
                    break
                self.meter.bytes_read += len(data)
                pos += len(data)
                buf = carry + data
                base = pos - len(buf)
                cut = len(buf) if pos >= s.end else _last_boundary(buf, q)
                carry = buf[cut:]
                if cut:
                    yield base, buf[:cut]
            if carry:
                yield pos - len(carry), carry

    def _raw_blocks(self) -> Iterator[tuple[list, list]]:
        """Blocks of ``(offsets, texts)``: each text one record (embedded newlines kept)."""
        if self.opts.get("stream"):
            yield from self._stream_blocks()
            return
        q = ord(self.quote)
        for base, data in self._byte_chunks():
            yield _records_of(data, base, q, self.split, self)

    def _stream_blocks(self) -> Iterator[tuple[list, list]]:
        s = self.split
        with view(s.path).open() as f:
            f.seek(s.start)
            self.meter.bytes_read += s.start
            text = io.TextIOWrapper(_Readable(f), encoding="utf-8", errors="replace", newline="")
            lines: list = []         # the lines of the record being read: its text, for the null check

            def recorded():
                for line in text:
                    lines.append(line)
                    yield line
            reader = pycsv.reader(recorded(), delimiter=self.delim, quotechar=self.quote)
            first_row = 2 if self.opts.get("header", True) else 1
            nulls, marking = self.nulls, self.kind != "array"
            while True:
                rows = []
                for row in itertools.islice(reader, 65536):
                    if marking and not nulls.isdisjoint(row):
                        row = _mark_nulls(row, "".join(lines), nulls, self.delim, self.quote)
                    lines.clear()
                    rows.append(row)
                if not rows:
                    break
                self.meter.bytes_read = f.tell()
                yield ("rows", first_row, rows)
                first_row += len(rows)

    def _rows(self, blocks=None) -> Iterator[tuple[list, list]]:
        """Blocks of ``(locations, fields)`` for well-formed rows; bad ones go to the quarantine."""
        width = len(self.names)
        for block in self._raw_blocks() if blocks is None else blocks:
            if block[0] == "rows":
                _, first, rows = block
                locs = [("row", first + i) for i in range(len(rows))]
                texts = None
            else:
                offsets, texts = block
                rows = list(pycsv.reader(texts, delimiter=self.delim, quotechar=self.quote))
                locs = offsets
                if self.kind != "array" and len(rows) == len(texts):
                    nulls = self.nulls
                    rows = [r if nulls.isdisjoint(r) else _mark_nulls(r, t, nulls, self.delim, self.quote)
                            for r, t in zip(rows, texts)]
            if set(map(len, rows)) != {width} and rows:
                keep = [i for i, r in enumerate(rows) if len(r) == width or self._bad_width(locs[i], r, texts, i)]
                rows, locs = [rows[i] for i in keep], [locs[i] for i in keep]
            yield locs, rows

    # -- the Arrow path: pyarrow parses whole chunks, Python only where a chunk has a bad row ---------
    def _arrow_target(self):
        from mapred.formats.schema import Field, Schema, to_arrow
        return to_arrow(Schema(tuple(Field(n, t) for n, t in zip(self.names, self.types))))

    def _arrow_parse(self, data: bytes, target):
        """A chunk as a ``pyarrow.Table`` by pyarrow's own CSV parser, or ``None`` if it has a bad row."""
        import pyarrow as pa
        import pyarrow.csv as pacsv
        if data.count(self.quote.encode()) % 2:
            return None          # a quote left open (pyarrow would close it at the end): the Python path says so
        try:
            return pacsv.read_csv(
                pa.py_buffer(data),
                read_options=pacsv.ReadOptions(column_names=self.names, use_threads=False,
                                               block_size=max(len(data) + 1, 1 << 20)),
                parse_options=pacsv.ParseOptions(delimiter=self.delim, quote_char=self.quote,
                                                 newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(column_types=target, null_values=sorted(self.nulls),
                                                     strings_can_be_null=True, quoted_strings_can_be_null=False,
                                                     true_values=TRUE_WORDS, false_values=FALSE_WORDS))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None

    def _tables(self) -> Iterator[tuple[int, Any]]:
        """``(offset, pyarrow.Table)`` per chunk; a chunk pyarrow refuses is parsed row by row."""
        import pyarrow as pa
        target = self._arrow_target()
        if self.opts.get("stream"):
            chunks = ((None, block) for block in self._stream_blocks())
        else:
            chunks = self._byte_chunks()
        q = ord(self.quote)
        for base, data in chunks:
            table = self._arrow_parse(data, target) if base is not None and data else None
            if table is not None:
                yield base, table
                continue
            block = data if base is None else _records_of(data, base, q, self.split, self)
            for locs, rows in self._rows([block]):
                locs, values = self._typed(locs, rows)
                if values:
                    yield _first(locs, self.split.start), pa.Table.from_pylist(
                        [dict(zip(self.names, v)) for v in values], schema=target)

    def _bad_width(self, loc, row, texts, i) -> bool:
        if len(row) == 0 or row == [""] and len(self.names) != 1:
            return False   # a blank line is no record
        self.bad.add(self._error(loc, f"{len(row)} fields, expected {len(self.names)}",
                                 texts[i] if texts else row))
        return False

    def _error(self, loc, reason: str, record) -> FormatError:
        if isinstance(loc, tuple):
            return FormatError(self.split.path, reason, split=self.split.index, row=loc[1], record=record)
        return FormatError(self.split.path, reason, split=self.split.index, offset=loc, record=record)

    # -- typed records --------------------------------------------------------------
    def _typed(self, locs, rows) -> tuple[list, list]:
        """Rows with typed values: a column at a time through C-speed ``map`` when every value
        parses, else row by row, which sends the rows that do not to the quarantine."""
        try:
            cols = [_convert_column(col, t) for col, t in zip(zip(*rows), self.types)]
            return locs, [list(r) for r in zip(*cols)] if cols else [[] for _ in rows]
        except ValueError:
            pass
        converters = [(_converter(t)) for t in self.types]
        out_locs, out = [], []
        for loc, row in zip(locs, rows):
            try:
                values = [c(v) for c, v in zip(converters, row)]
            except ValueError:
                self.bad.add(self._error(loc, self._why(row), row))
                continue
            out_locs.append(loc)
            out.append(values)
        return out_locs, out

    def _why(self, row) -> str:
        for name, t, v in zip(self.names, self.types, row):
            try:
                schemamod.parse_text("" if v is None else v, t)
            except ValueError:
                return f"column {name!r} value {v!r} is not {'a number' if t == 'float' else t}"
        return "a value does not parse"

    def _dicts_via_arrow(self) -> Iterator[tuple[list, list]]:
        """Dict records parsed by pyarrow, each at its own byte offset (found with numpy); a chunk whose
        records pyarrow would count differently (blank lines) or refuses takes the Python path."""
        target = self._arrow_target()
        q = ord(self.quote)
        for base, data in self._byte_chunks():
            table = self._arrow_parse(data, target) if data else None
            offsets = _record_offsets(data, base, q) if table is not None else None
            if table is None or len(offsets) != table.num_rows:
                for locs, rows in self._rows([_records_of(data, base, q, self.split, self)]):
                    locs, values = self._typed(locs, rows)
                    yield locs, self._shape(values)
                continue
            if self.kind == "row":
                yield offsets, list(zip(*(c.to_pylist() for c in table.columns))) if table.num_columns \
                    else [() for _ in offsets]
            else:
                yield offsets, table.to_pylist()

    def _shape(self, rows: list) -> list:
        if self.kind == "row":
            return list(map(tuple, rows))
        return list(map(dict, map(zip, itertools.repeat(self.names), rows)))

    def records(self) -> Iterator[tuple[Any, Any]]:
        for locs, rows in self.batches_raw():
            for loc, rec in zip(locs, rows):
                yield (loc[1] if isinstance(loc, tuple) else loc), rec

    def batches_raw(self) -> Iterator[tuple[list, list]]:
        if self.kind == "array":
            for locs, block in self._array_blocks():
                yield locs, list(block)
            return
        if self.kind in ("dict", "row", "arrow") and not self.opts.get("stream") and not self.opts.get("python"):
            yield from self._dicts_via_arrow()
            return
        for locs, rows in self._rows():
            if all(t == "str" for t in self.types):
                yield locs, self._shape(rows)
                continue
            locs, values = self._typed(locs, rows)
            yield locs, self._shape(values)

    def batches(self, size: int) -> Iterator[tuple[Any, Any]]:
        """``(offset, batch)``: a list of records, or (``record="array"``) one 2-D numpy block."""
        if self.kind == "array":
            for locs, block in self._array_blocks():
                yield _first(locs, self.split.start), block
            return
        if self.kind == "arrow":
            yield from self._tables()
            return
        for locs, recs in self.batches_raw():
            for i in range(0, len(recs), size):
                yield _first(locs[i:], self.split.start), recs[i:i + size]

    def _array_blocks(self) -> Iterator[tuple[list, np.ndarray]]:
        dtype = np.dtype(self.opts.get("dtype", "float64"))
        for locs, rows in self._rows():
            if not rows:
                continue
            try:
                block = np.array(rows, dtype=dtype)
            except ValueError:
                keep = []
                for i, row in enumerate(rows):
                    try:
                        np.array(row, dtype=dtype)
                        keep.append(i)
                    except ValueError:
                        bad = next(v for v in row if not _parses(v, dtype))
                        self.bad.add(self._error(locs[i], f"value {bad!r} is not a number", row))
                rows, locs = [rows[i] for i in keep], [locs[i] for i in keep]
                if not rows:
                    continue
                block = np.array(rows, dtype=dtype)
            yield locs, block.reshape(len(rows), len(self.names))


TRUE_WORDS = ["true", "True", "TRUE", "t", "T", "yes", "Yes", "YES", "1"]
FALSE_WORDS = ["false", "False", "FALSE", "f", "F", "no", "No", "NO", "0"]


def _first(locs, default):
    if not locs:
        return default
    return locs[0][1] if isinstance(locs[0], tuple) else locs[0]


def _parses(v: str, dtype) -> bool:
    try:
        np.array(v, dtype=dtype)
        return True
    except ValueError:
        return False


def _convert_column(col: tuple, t) -> list | tuple:
    """One column's strings (``None`` for a null) as type ``t``, an empty string null too but in a str
    column; raises ``ValueError`` if any does not parse."""
    if t == "str":
        return col
    if t in ("int", "float"):
        cast = int if t == "int" else float
        if "" in col or None in col:
            return [cast(v) if v else None for v in col]
        return list(map(cast, col))
    return [None if v is None else schemamod.parse_text(v, t) for v in col]


def _converter(t):
    if t == "str":
        return lambda v: v
    if t == "int":
        return lambda v: int(v) if v else None
    if t == "float":
        return lambda v: float(v) if v else None
    return lambda v: None if v is None else schemamod.parse_text(v, t)


def _mark_nulls(row: list, text: str, nulls: frozenset, delim: str, quote: str) -> list:
    """``row`` with its unquoted null-valued fields as ``None`` (Python's csv module cannot tell
    ``,"",`` from ``,,``, so the record's text says which fields were quoted)."""
    quoted = _quoted_fields(text, delim, quote)
    if len(quoted) != len(row):
        quoted = [False] * len(row)     # a record csv read otherwise than the scan: its values decide
    return [None if q is False and v in nulls else v for v, q in zip(row, quoted)]


def _quoted_fields(text: str, delim: str, quote: str) -> list:
    """Whether each field of one record's text starts with a quote (what makes it quoted for csv)."""
    out: list = []
    i, n = 0, len(text)
    if text.endswith("\n"):
        n -= 1
    if n and text[n - 1] == "\r":
        n -= 1
    if n == 0:
        return out
    while True:
        if i < n and text[i] == quote:
            out.append(True)
            j = i + 1
            while True:                      # the closing quote: one not doubled
                j = text.find(quote, j, n)
                if j < 0:
                    return out               # open to the end: the rest is this field
                if j + 1 < n and text[j + 1] == quote:
                    j += 2
                    continue
                break
            k = text.find(delim, j + 1, n)
        else:
            out.append(False)
            k = text.find(delim, i, n)
        if k < 0:
            return out
        i = k + 1


def _record_offsets(data: bytes, base: int, q: int) -> list:
    """The byte offset of every record in ``data`` (which starts on a record boundary)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = arr == 10
    if q in data:
        nl &= (np.cumsum(arr == q, dtype=np.int64) & 1) == 0
    ends = np.flatnonzero(nl)
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.array([0])
    if len(ends) and ends[-1] + 1 < len(data):
        starts = np.append(starts, ends[-1] + 1)     # a last record without its newline
    return (starts + base).tolist()


def _last_boundary(buf: bytes, q: int) -> int:
    """The index just after the last newline of ``buf`` that is outside quotes (0 when none)."""
    if q not in buf:
        return buf.rfind(b"\n") + 1
    arr = np.frombuffer(buf, dtype=np.uint8)
    parity = np.cumsum(arr == q, dtype=np.int64) & 1
    ends = np.flatnonzero((arr == 10) & (parity == 0))
    return int(ends[-1]) + 1 if len(ends) else 0


def _records_of(data: bytes, base: int, q: int, split, reader) -> tuple[list, list]:
    """``(offsets, texts)`` of the records in ``data`` (which starts at a record boundary)."""
    if q not in data:
        pieces = data.split(b"\n")
        if pieces and pieces[-1] == b"":
            pieces.pop()
    else:
        arr = np.frombuffer(data, dtype=np.uint8)
        parity = np.cumsum(arr == q, dtype=np.int64) & 1
        if parity[-1] and data:
            end_open = base + len(data)
            last_nl = np.flatnonzero((arr == 10) & (parity == 0))
            start = int(last_nl[-1]) + 1 if len(last_nl) else 0
            reason = ("a quoted field is still open at the end of the split "
                      + ("(an unterminated quote, or a split boundary misjudged inside a long quoted field: "
                         "read this file with split=False)" if end_open < reader_size(split) else "(unterminated quote)"))
            reader.bad.add(FormatError(split.path, reason, split=split.index, offset=base + start,
                                       record=data[start:start + 200]))
            data, arr, parity = data[:start], arr[:start], parity[:start]
        cuts = np.flatnonzero((arr == 10) & (parity == 0)).tolist()
        pieces, prev = [], 0
        for c in cuts:
            pieces.append(data[prev:c])
            prev = c + 1
        if prev < len(data):
            pieces.append(data[prev:])
    offsets, off = [], base
    for p in pieces:
        offsets.append(off)
        off += len(p) + 1
    texts = [p.decode("utf-8", errors="replace") for p in pieces]
    return offsets, texts


def reader_size(split) -> int:
    return view(split.path).size


class _Readable:
    """The least a ``TextIOWrapper`` needs of a reader (the decompressing views lack ``readable``)."""

    def __init__(self, f) -> None:
        self.f = f
        self.closed = False

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def read1(self, n: int = -1) -> bytes:
        return self.f.read(n if n and n > 0 else 1 << 20)

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)

    def readinto(self, b) -> int:
        data = self.f.read(len(b))
        b[:len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self.f.tell()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


# ----------------------------------------------------------------------------- writing
class Writer:
    """One CSV part: a header from the schema or the first record's keys, then one line per record.

    ``None`` is an empty field; a string that would read back as a null (``""``,
    or one of ``null_values``) or that holds a carriage return is quoted, with
    every other non-null field of its row (csv's ``QUOTE_MINIMAL`` cannot quote
    an empty string, and ``QUOTE_ALL`` would quote the nulls too).
    """

    def __init__(self, f, options: dict, bad, part: str = "") -> None:
        self.f, self.bad, self.part = f, bad, part
        self.delim, self.quote = _dialect(options)
        self.header = options.get("header", True)
        self.nulls = frozenset(null_values(options))
        sch = schemamod.parse(options.get("schema"))
        self.names = sch.names if sch else list(options.get("columns") or [])
        self.buf = io.StringIO()
        self.w = pycsv.writer(self.buf, delimiter=self.delim, quotechar=self.quote, lineterminator="\n")
        self.started = False
        self.records = 0

    def _start(self, record) -> None:
        if not self.names and isinstance(record, dict):
            self.names = list(record)
        if self.header and self.names:
            self.w.writerow(self.names)
        self.started = True

    def write(self, key, value) -> None:
        from mapred.formats.base import as_record
        record = value if isinstance(value, (tuple, list)) else as_record(key, value)
        if not self.started:
            self._start(record)
        if isinstance(record, dict):
            extra = [k for k in record if k not in self.names]
            if extra:
                self.bad.add(SchemaError(f"field {extra[0]!r} is not among the CSV columns {self.names}",
                                         record, self.part))
                return
            row = [record.get(n) for n in self.names]
        else:
            row = list(record)
            if self.names and len(row) != len(self.names):
                self.bad.add(SchemaError(f"{len(row)} fields, expected {len(self.names)}", record, self.part))
                return
        row = [None if v is None else _text(v) for v in row]
        if len(row) == 1 and row[0] is None:
            self.bad.add(SchemaError("a one-column CSV cannot hold a null (its empty line is no record)",
                                     record, self.part))
            return
        if any(v is not None and (v in self.nulls or "\r" in v) for v in row):
            q, qq = self.quote, self.quote * 2
            self.buf.write(self.delim.join("" if v is None else q + v.replace(q, qq) + q for v in row) + "\n")
        else:
            self.w.writerow(row)
        self.records += 1
        if self.buf.tell() > (1 << 20):
            self.flush()

    def write_arrays(self, pairs) -> None:
        for k, v in zip(pairs.keys.tolist(), pairs.values.tolist()):
            self.write(k, v)

    def flush(self) -> None:
        data = self.buf.getvalue()
        if data:
            self.f.write(data.encode("utf-8", errors="surrogateescape"))
            self.buf.seek(0)
            self.buf.truncate()

    def close(self) -> None:
        if not self.started and self.header and self.names:
            self.w.writerow(self.names)      # an empty part still says its columns
        self.flush()


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", errors="backslashreplace")
    if isinstance(v, (list, dict, tuple)):
        return json.dumps(v, ensure_ascii=False, default=str)
    if hasattr(v, "item"):
        v = v.item()
    return repr(v) if isinstance(v, float) else str(v)


def splits(path: str, split_size: int, options: dict) -> list:
    """Planner entry (an alias kept for symmetry with the other format modules)."""
    return plan(path, split_size, options)


__all__ = ["Reader", "Writer", "plan", "resolve_boundary"]
