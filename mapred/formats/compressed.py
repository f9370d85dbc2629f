"""Compressed text: gzip and bzip2 read whole, zstd's seekable format split on frame boundaries.

gzip and bzip2 streams cannot be entered in the middle, so such a file is one
split (the task's ``formats/unsplittable_files`` counter says so).  A zstd
file in the *seekable format* (frames plus a seek table in a skippable frame
at the end, as written by ``zstd --seekable``-style tools and by
``write_zstd_seekable`` here) is split on frame boundaries: a split is a
range of *decompressed* offsets whose ends fall on frame starts, its hosts
those of its first frame's block, and the line rule then applies exactly as
for plain text (a frame may end mid-line).  A zstd file without a seek table
is read whole, like gzip.

``view(path)`` gives any path (compressed or not) as ``(size, blocks, open)``
in decompressed coordinates, so the line-based formats (text, JSON lines,
CSV) read ``.gz``/``.bz2``/``.zst`` copies of themselves the same way.
"""
from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from mapred.formats.base import hosts_at, line_blocks, make_split
from mapred.io.fs import get_fs

NAME = "ztext"
CODECS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".zst": "zstd", ".zstd": "zstd"}
SKIPPABLE_SEEK_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
FOOTER = struct.Struct("<IBI")
UNKNOWN_SIZE = 1 << 62


def codec_of(path: str) -> str | None:
    """The compression codec named by ``path``'s extension, or None."""
    for ext, name in CODECS.items():
        if path.endswith(ext):
            return name
    return None


def inner_name(path: str) -> str:
    """``a.csv.gz`` → ``a.csv``: the name a compressed file has once decompressed."""
    for ext in CODECS:
        if path.endswith(ext):
            return path[:-len(ext)]
    return path


# ----------------------------------------------------------------------------- the seek table
def read_seek_table(f: BinaryIO, size: int) -> list[tuple[int, int, int, int]] | None:
    """``[(compressed offset, compressed size, decompressed offset, decompressed size)]`` or ``None``."""
    if size < FOOTER.size + 8:
        return None
    f.seek(size - FOOTER.size)
    n, descriptor, magic = FOOTER.unpack(f.read(FOOTER.size))
    if magic != SEEKABLE_MAGIC:
        return None
    entry = 12 if descriptor & 0x80 else 8
    table_len = n * entry + FOOTER.size
    f.seek(size - table_len - 8)
    skip_magic, frame_size = struct.unpack("<II", f.read(8))
    if skip_magic != SKIPPABLE_SEEK_MAGIC or frame_size != table_len:
        return None
    raw = f.read(n * entry)
    frames, c_off, d_off = [], 0, 0
    for i in range(n):
        c_size, d_size = struct.unpack_from("<II", raw, i * entry)
        frames.append((c_off, c_size, d_off, d_size))
        c_off += c_size
        d_off += d_size
    return frames


class SeekableZstd:
    """The decompressed bytes of a seekable zstd file, with ``seek``/``read``, one frame at a time."""

    def __init__(self, f: BinaryIO, frames: list) -> None:
        import zstandard
        self.f, self.frames = f, frames
        self.starts = [d for _, _, d, _ in frames]
        self.size = frames[-1][2] + frames[-1][3] if frames else 0
        self.pos = 0
        self.cached: tuple[int, bytes] | None = None
        self.dctx = zstandard.ZstdDecompressor()

    def _frame(self, i: int) -> bytes:
        if self.cached is None or self.cached[0] != i:
            c_off, c_size, _, d_size = self.frames[i]
            self.f.seek(c_off)
            self.cached = (i, self.dctx.decompress(self.f.read(c_size), max_output_size=max(d_size, 1)))
        return self.cached[1]

    def seek(self, pos: int, whence: int = 0) -> int:
        """Move the logical (decompressed) position; frames are found on read."""
        self.pos = pos if whence == 0 else (self.pos + pos if whence == 1 else self.size + pos)
        return self.pos

    def tell(self) -> int:
        """The logical (decompressed) position."""
        return self.pos

    def read(self, n: int = -1) -> bytes:
        """Read ``n`` decompressed bytes, decompressing only the frames they fall in."""
        if n is None or n < 0:
            n = self.size - self.pos
        out = []
        while n > 0 and self.pos < self.size:
            i = bisect.bisect_right(self.starts, self.pos) - 1
            data = self._frame(i)
            lo = self.pos - self.frames[i][2]
            piece = data[lo:lo + n]
            if not piece:
                break
            out.append(piece)
            self.pos += len(piece)
            n -= len(piece)
        return b"".join(out)

    def close(self) -> None:
        """Close the compressed file."""
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class View:
    """A file as the line formats see it: decompressed size, blocks ``(start, length, hosts)``, opener."""

    size: int
    blocks: list
    open: Callable[[], BinaryIO]
    splittable: bool
    codec: str | None


def view(path: str, split_size: int = 1 << 62) -> View:
    """The decompressed view of ``path``: its codec, size and whether it can be split."""
    fs = get_fs(path)
    codec = codec_of(path)
    if codec is None:
        blocks = fs.block_locations(path, split_size) or [(0, 0, ())]   # an empty file is one empty block
        return View(fs.size(path), blocks, lambda: fs.open_read(path), True, None)
    hosts = hosts_at(fs.block_locations(path, 1 << 62), 0)
    if codec == "zstd":
        size = fs.size(path)
        with fs.open_read(path) as f:
            frames = read_seek_table(f, size)
        if frames:
            return View(frames[-1][2] + frames[-1][3], _frame_blocks(fs, path, frames, split_size),
                        lambda: SeekableZstd(fs.open_read(path), frames), True, codec)
    return View(UNKNOWN_SIZE, [(0, UNKNOWN_SIZE, hosts)], lambda: open_stream(path, codec), False, codec)


def _frame_blocks(fs, path: str, frames: list, split_size: int) -> list:
    """Groups of whole frames of about ``split_size`` compressed bytes, in decompressed coordinates."""
    blocks = fs.block_locations(path, 1 << 62)
    out, group_start, group_c = [], 0, 0
    for i, (c_off, c_size, d_off, d_size) in enumerate(frames):
        if i == 0:
            group_start, group_c, first_c = d_off, 0, c_off
        group_c += c_size
        last = i == len(frames) - 1
        if group_c >= split_size or last:
            out.append((group_start, d_off + d_size - group_start, hosts_at(blocks, first_c)))
            if not last:
                group_start, group_c, first_c = frames[i + 1][2], 0, frames[i + 1][0]
    return out


def open_stream(path: str, codec: str) -> BinaryIO:
    """A forward-reading decompressed stream (gzip, bzip2, or a zstd file without a seek table)."""
    raw = get_fs(path).open_read(path)
    if codec == "gzip":
        import gzip
        return _Closing(gzip.GzipFile(fileobj=raw, mode="rb"), raw)
    if codec == "bzip2":
        import bz2
        return _Closing(bz2.BZ2File(raw, mode="rb"), raw)
    import zstandard
    return _Closing(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True), raw)


class _Closing:
    """A decompressing reader that also closes its raw file; it seeks forward only (by reading)."""

    def __init__(self, reader, raw) -> None:
        self.reader, self.raw, self.pos = reader, raw, 0

    def read(self, n: int = -1) -> bytes:
        data = self.reader.read(n if n and n > 0 else 1 << 30)
        self.pos += len(data)
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos < self.pos:
            raise OSError("a zstd stream without a seek table reads forward only")
        while self.pos < pos:
            if not self.read(min(1 << 20, pos - self.pos)):
                break
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        self.reader.close()
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- text input
def plan(path: str, split_size: int, options: dict) -> list:
    """Splits of a compressed text file: by frames when seekable, else the whole file."""
    v = view(path, split_size)
    opts = {"codec": v.codec}
    if not v.splittable:
        opts["note"] = f"{v.codec} input is not splittable: read whole"
        return [make_split(NAME, path, 0, v.size, v.blocks[0][2], opts)]
    return [make_split(NAME, path, s, s + n, hosts, opts) for s, n, hosts in v.blocks]


class Reader:
    """Lines of decompressed text, by the line rule, as the text input modes want them."""

    def __init__(self, split, meter, bad, errors: str = "strict") -> None:
        from mapred.formats.base import split_options
        self.split, self.meter, self.bad, self.errors = split, meter, bad, errors
        note = split_options(split).get("note")
        self.notes: dict = {"unsplittable_files": 1} if note else {}

    def byte_blocks(self) -> Iterator[tuple[int, bytes]]:
        """``(offset, bytes)`` blocks of whole lines of the split, decompressed."""
        s = self.split
        with view(s.path).open() as f:
            yield from line_blocks(f, s.start, s.end, self.meter)

    def _decode(self, data: bytes, base: int) -> str:
        try:
            return data.decode("utf-8", errors=self.errors)
        except UnicodeDecodeError as exc:
            from mapred.formats.base import FormatError
            raise FormatError(self.split.path, f"not valid UTF-8 (byte {base + exc.start} of the decompressed "
                              f"text); use errors='replace' to substitute", split=self.split.index,
                              offset=base + data.rfind(b"\n", 0, exc.start) + 1) from None

    def string_blocks(self) -> Iterator[tuple[int, str]]:
        """The byte blocks decoded to text."""
        for base, data in self.byte_blocks():
            yield base, self._decode(data, base)

    def records(self) -> Iterator[tuple[int, str]]:
        """``(offset, line)`` for every line of the split."""
        for base, data in self.byte_blocks():
            off = base
            for raw in data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"):
                line = self._decode(raw, off)
                yield off, line.removesuffix("\r")
                off += len(raw) + 1

    def batches(self, size: int) -> Iterator[tuple[int, list]]:
        """Lists of about ``size`` lines with the offset of the first."""
        for base, text in self.string_blocks():
            lines = text.split("\n")
            if text.endswith("\n"):
                lines.pop()
            lines = [ln.removesuffix("\r") for ln in lines]
            for i in range(0, len(lines), size):
                yield base, lines[i:i + size]


# ----------------------------------------------------------------------------- writing
class SeekableZstdWriter:
    """A file wrapper that writes zstd frames of about ``frame_bytes`` (cut after a newline) and a seek table."""

    def __init__(self, f: BinaryIO, frame_bytes: int = 1 << 20, level: int = 3) -> None:
        import zstandard
        self.f, self.frame_bytes = f, frame_bytes
        self.cctx = zstandard.ZstdCompressor(level=level)
        self.buf = bytearray()
        self.entries: list[tuple[int, int]] = []

    def write(self, data) -> int:
        """Buffer ``data``; a full frame (ending after a newline when it can) is compressed."""
        self.buf += data
        while len(self.buf) >= self.frame_bytes:
            cut = self.buf.rfind(b"\n", 0, self.frame_bytes)     # frames end after a newline when they can
            cut = cut + 1 if cut >= 0 else self.frame_bytes
            self._frame(bytes(self.buf[:cut]))
            del self.buf[:cut]
        return len(data)

    def _frame(self, data: bytes) -> None:
        if data:
            comp = self.cctx.compress(data)
            self.f.write(comp)
            self.entries.append((len(comp), len(data)))

    def close(self) -> None:
        """Compress the last frame and append the seek table."""
        self._frame(bytes(self.buf))
        self.buf.clear()
        table = b"".join(struct.pack("<II", c, d) for c, d in self.entries)
        footer = FOOTER.pack(len(self.entries), 0, SEEKABLE_MAGIC)
        self.f.write(struct.pack("<II", SKIPPABLE_SEEK_MAGIC, len(table) + len(footer)) + table + footer)

    def flush(self) -> None:
        """No-op: frames are written whole, at their size or at close."""


def compressing(f: BinaryIO, compression: str | None):
    """A writer over ``f`` that compresses (``gzip``, ``bzip2``, ``zstd`` seekable) or ``f`` itself."""
    if not compression or compression == "none":
        return f
    if compression == "gzip":
        import gzip
        return gzip.GzipFile(fileobj=f, mode="wb")
    if compression == "bzip2":
        import bz2
        return bz2.BZ2File(f, mode="wb")
    if compression == "zstd":
        return SeekableZstdWriter(f)
    from mapred.errors import ConfigError
    raise ConfigError(f"text compression must be gzip, bzip2, zstd or none, got {compression!r}")


SUFFIXES = {"gzip": ".gz", "bzip2": ".bz2", "zstd": ".zst"}


def compress_file(src: str, dst: str, compression: str, frame_bytes: int = 1 << 20) -> None:
    """Copy ``src`` to ``dst`` compressed (zstd in the seekable format, frames cut after newlines)."""
    fs_in, fs_out = get_fs(src), get_fs(dst)
    with fs_in.open_read(src) as fin, fs_out.open_write(dst) as fout:
        w = SeekableZstdWriter(fout, frame_bytes) if compression == "zstd" else compressing(fout, compression)
        while True:
            piece = fin.read(1 << 20)
            if not piece:
                break
            w.write(piece)
        w.close()
