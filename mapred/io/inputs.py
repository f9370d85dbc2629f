"""Job input: turning paths and datasets into splits, and reading a split's records.

Text splits follow the line rule: a split owns the lines that *start* inside
its byte range.  A split not at offset 0 therefore skips its first partial
line (it belongs to the previous split), and every split reads past its end to
finish its last line — so each line is read exactly once, whatever the split
size.  The key of a line is its byte offset in the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from time import perf_counter
from typing import Any, Iterator

import numpy as np

from mapred.io import recordfile
from mapred.io.datasets import ArrayDataset, is_dataset_dir, load_dataset
from mapred.errors import InputError
from mapred.io.fs import get_fs
from mapred.io.linerule import first_line_start
from mapred.types import Split

RECORD_SUFFIXES = (".mpk", ".msgpack")
READ_CHUNK = 8 << 20
READ_PAST = 1 << 20     # read size past a split's end or start, looking for a line's end


@dataclass(frozen=True)
class RecordInput:
    """Paths of msgpack record files (``mapred.records(path)``); also chosen by suffix ``.mpk``."""

    paths: tuple


def records(*paths: str) -> RecordInput:
    """Mark paths as msgpack record files (``RecordInput``), whatever their suffix."""
    return RecordInput(tuple(paths))


def _as_list(inputs) -> list:
    if isinstance(inputs, (str, ArrayDataset, RecordInput)) or hasattr(inputs, "__fspath__"):
        return [inputs]
    return list(inputs)


def plan_splits(inputs, split_size: int, input_format: str | None = None,
                input_options: dict | None = None, bad_records: str = "fail") -> list[Split]:
    """Every split of ``inputs`` in a stable order; raises ``InputError`` for missing input.

    A file whose format's planner cannot read it raises the error naming it, or
    with ``bad_records="skip"`` becomes one quarantined split (``formats.plan``).

    Files are read as ``input_format`` or, when it is ``None``, as the format
    their extension names (``mapred.formats.infer``: ``.csv``, ``.jsonl``,
    ``.parquet``, ``.avro``, ``.seq``, ``.gz``/``.bz2``/``.zst``, ``.mpk``;
    anything else is text).
    """
    items = _as_list(inputs)
    if not items:
        raise InputError("the job has no input paths")
    splits: list[Split] = []
    for item in items:
        for split in _plan_one(item, split_size, input_format, input_options or {}, bad_records):
            splits.append(Split(len(splits), split.fmt, split.path, split.start, split.end,
                                split.hosts, split.dataset, split.extra))
    return splits


def _plan_one(item, split_size: int, input_format: str | None, options: dict, bad_records: str) -> list[Split]:
    if isinstance(item, ArrayDataset):
        return _array_splits(item)
    if isinstance(item, RecordInput):
        return [s for p in item.paths for f in get_fs(p).expand(p) for s in _file_splits(f, "records", split_size)]
    path = str(item)
    if is_dataset_dir(path):
        return _array_splits(load_dataset(path))
    from mapred import formats   # deferred: the format modules load only for jobs that use them
    out = []
    for f in get_fs(path).expand(path):
        fmt = input_format or formats.infer(f)
        if fmt == "text" and formats.infer(f) == "ztext":
            fmt = "ztext"          # input_format="text" over a .gz file still decompresses it
        if fmt in ("text", "records"):
            out.extend(_file_splits(f, fmt, split_size))
        else:
            out.extend(formats.plan(f, fmt, split_size, options, bad_records))
    return out


def _file_splits(path: str, fmt: str, split_size: int) -> list[Split]:
    fs = get_fs(path)
    blocks = fs.block_locations(path, split_size)
    return [Split(0, fmt, path, start, start + length, tuple(hosts)) for start, length, hosts in blocks]


def _array_splits(ds: ArrayDataset) -> list[Split]:
    fs = get_fs(ds.path)
    hosts: tuple = ()
    if hasattr(fs, "block_locations"):
        blocks = fs.block_locations(ds.array_path(0, ds.parts[0][0] if ds.parts else ""), 1 << 62)
        hosts = tuple(blocks[0][2]) if blocks else ()
    tag = ds.id if ds.cached else ""
    return [Split(0, "array", ds.path, a, b, hosts, tag) for a, b in ds.ranges]


class SplitReader:
    """Reads one split as records or batches, counting the bytes it read."""

    def __init__(self, split: Split, errors: str = "strict") -> None:
        self.split = split
        self.errors = errors
        self.bytes_read = 0          # everything read, boundary look-ups included
        self.bytes_owned = 0         # bytes of the records this split yields (map.input_bytes)
        self.read_seconds = 0.0      # reading and decoding blocks (the profile's "read" stage)

    # -- text ---------------------------------------------------------------
    def _text_blocks(self) -> Iterator[tuple[int, bytes]]:
        """``(offset, bytes)`` blocks of whole lines owned by this split.

        A line longer than a read is gathered in a ``bytearray`` and joined
        once when its newline arrives, so a 58 MB single-line file costs a
        few copies of the line, not a copy per read (which was quadratic).
        """
        s = self.split
        with get_fs(s.path).open_read(s.path) as f:
            # Hadoop's line rule, first half (io/linerule): skip a partial first line, the
            # previous split's to finish
            pos, scanned = first_line_start(f, s.start, READ_PAST)
            self.bytes_read += scanned
            f.seek(pos)
            carry = bytearray()   # a line begun in earlier reads and not yet ended
            while pos < s.end or carry:
                # second half: past `end` only the line that spans it is still ours, so read on
                # until its newline (or the end of the file)
                want = min(READ_CHUNK, max(s.end - pos, 0)) or READ_PAST
                started = perf_counter()
                data = f.read(want)
                self.read_seconds += perf_counter() - started
                self.bytes_read += len(data)
                if not data:
                    if carry:
                        yield self._owned(pos - len(carry), bytes(carry))
                    return
                if data.rfind(b"\n") < 0:
                    carry += data          # amortised growth, no re-copy of what came before
                    pos += len(data)
                    continue
                base = pos - len(carry)
                pos += len(data)
                if carry:
                    carry += data
                    data, carry = bytes(carry), bytearray()
                cut = data.rfind(b"\n")
                owned_end = self._owned_cut(data, base, cut)
                if owned_end is not None:
                    yield self._owned(base, data[:owned_end])
                    return
                yield self._owned(base, data[:cut + 1])
                carry = bytearray(data[cut + 1:])

    def _owned(self, base: int, block: bytes) -> tuple[int, bytes]:
        """Count a block of this split's own lines: what ``map.input_bytes`` reports.

        Bytes read only to find line boundaries (the partial line before the
        split, the end of the line after it) belong to the neighbour's lines,
        so the splits' counts add up to the input's size.
        """
        self.bytes_owned += len(block)
        return base, block

    def _owned_cut(self, data: bytes, base: int, cut: int):
        """If this block reaches past the split's end, where the last owned line ends."""
        end = self.split.end
        if base + cut + 1 <= end:
            return None
        # lines starting before `end` are owned; find the newline ending the line that spans `end`
        i = data.find(b"\n", max(end - base - 1, 0))
        return i + 1

    def _decode(self, raw: bytes, offset: int) -> str:
        try:
            return raw.decode("utf-8", errors=self.errors)
        except UnicodeDecodeError as exc:
            line_start = raw.rfind(b"\n", 0, exc.start) + 1
            raise InputError(f"{self.split.path}: line at byte offset {offset + line_start} is not valid "
                             f"UTF-8 (byte {offset + exc.start}); use errors='replace' to substitute") from None

    @staticmethod
    def _strip(lines: list) -> list:
        return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]

    def text_records(self) -> Iterator[tuple[int, str]]:
        """``(offset, line)`` for each line this split owns (Hadoop's line rule).

        Per block, not per line, in Python: the lines come from one ``split``,
        their byte offsets from one ``cumsum`` of the lines' byte lengths, and
        the pairs from ``zip`` — so reading costs the mapper almost nothing.
        """
        return chain.from_iterable(self._line_blocks())

    def _line_blocks(self) -> Iterator[Iterator[tuple[int, str]]]:
        for base, block in self._text_blocks():
            started = perf_counter()
            text = self._decode(block, base)
            lines = text.split("\n")
            if text.endswith("\n"):
                lines.pop()
            # a line's bytes: its characters when ASCII; otherwise the raw block's lines, which split at
            # the same newlines (a newline is one byte in UTF-8, and no replacement swallows one)
            sizes = lines if text.isascii() else block.split(b"\n")[:len(lines)]
            if "\r" in text:
                lines = self._strip(lines)
            starts = np.fromiter(map(len, sizes), dtype=np.int64, count=len(lines))
            starts += 1
            np.cumsum(starts, out=starts)
            offsets = [base, *(starts[:-1] + base).tolist()] if len(lines) else []
            self.read_seconds += perf_counter() - started
            yield zip(offsets, lines)

    def text_byte_blocks(self) -> Iterator[tuple[int, bytes]]:
        """``(offset, bytes)`` blocks of whole lines, undecoded (``input_mode="bytes"``)."""
        return self._text_blocks()

    def text_string_blocks(self) -> Iterator[tuple[int, str]]:
        """``(offset, str)`` blocks of whole lines, decoded (``input_mode="text"``)."""
        for base, block in self._text_blocks():
            started = perf_counter()
            text = self._decode(block, base)
            self.read_seconds += perf_counter() - started
            yield base, text

    def text_batches(self, batch_lines: int) -> Iterator[tuple[int, list]]:
        """``(offset of the block, [lines])``: each decoded block's lines, ``batch_lines`` at a time."""
        for base, block in self._text_blocks():
            started = perf_counter()
            text = self._decode(block, base)
            lines = text.split("\n")
            if text.endswith("\n"):
                lines.pop()
            if "\r" in text:
                lines = self._strip(lines)
            self.read_seconds += perf_counter() - started
            for i in range(0, len(lines), batch_lines):
                yield base, lines[i:i + batch_lines]

    # -- records ------------------------------------------------------------
    def record_records(self) -> Iterator[tuple[Any, Any]]:
        """``(key, value)`` for each record of this split's chunks (as 2-lists: the map loop unpacks them).

        Each chunk is decoded in one call into a list (counted as reading), and
        the records are chained from the lists in C: no Python step per record.
        """
        return chain.from_iterable(self._record_chunks())

    def _record_chunks(self) -> Iterator[list]:
        s = self.split
        with get_fs(s.path).open_read(s.path) as f:
            chunks = recordfile.iter_chunks(f, s.path, s.start, s.end)
            while True:
                started = perf_counter()
                _, payload = next(chunks, (None, None))
                if payload is None:
                    self.read_seconds += perf_counter() - started
                    return
                records = recordfile.decode_chunk(payload)
                self.read_seconds += perf_counter() - started
                self.bytes_read += len(payload)
                self.bytes_owned += len(payload)
                yield records

    def record_batches(self, batch_size: int) -> Iterator[tuple[int, list]]:
        """``(chunk offset, [(key, value), ...])`` for each record-file chunk of this split."""
        s = self.split
        with get_fs(s.path).open_read(s.path) as f:
            for offset, payload in recordfile.iter_chunks(f, s.path, s.start, s.end):
                started = perf_counter()
                records = list(recordfile.iter_records(payload))
                self.read_seconds += perf_counter() - started
                self.bytes_read += len(payload)
                self.bytes_owned += len(payload)
                yield offset, records

    # -- arrays -------------------------------------------------------------
    def array_block(self):
        """The split's rows of every array (a tuple when the dataset has several)."""
        started = perf_counter()
        ds = load_dataset(self.split.path)
        block = ds.read_rows(self.split.start, self.split.end)
        self.read_seconds += perf_counter() - started
        self.bytes_read += sum(a.nbytes for a in block)
        self.bytes_owned = self.bytes_read
        return block[0] if len(block) == 1 else block


def line_offsets_exact(split: Split) -> list[tuple[int, str]]:
    """All ``(offset, line)`` of a split (a convenience for tests and the reference)."""
    return list(SplitReader(split).text_records())
