"""Row-aligned numpy datasets: arrays stored as ``.npy`` files, split into row ranges.

A dataset is a directory (local or ``mrfs://``) holding one ``.npy`` per array
and ``_dataset.mpk`` (msgpack metadata: format version, id, row count, array
names, split row ranges).  A split's rows are read with one seek and one read
per array and turned into arrays by ``np.frombuffer`` — no parsing — which is
what makes numeric passes cheap.  ``cache()`` marks the dataset so executors
keep each split's block in memory between jobs.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass, replace

import msgpack
import numpy as np

from mapred.errors import InputError
from mapred.io.fs import get_fs

META_NAME = "_dataset.mpk"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ArrayInfo:
    """One array of a dataset: its file name, dtype and row shape."""

    name: str
    dtype: str
    shape: tuple  # full shape; shape[0] is the row count


@dataclass(frozen=True)
class ArrayDataset:
    """Arrays that share their first axis, and the row ranges that make the splits."""

    path: str
    id: str
    num_rows: int
    arrays: tuple
    ranges: tuple
    cached: bool = False
    parts: tuple = ()     # ((subdir, first_row, end_row), ...) for a dataset a job wrote; () = one part

    @property
    def num_splits(self) -> int:
        """How many row ranges (map tasks) the dataset is read as."""
        return len(self.ranges)

    def cache(self) -> "ArrayDataset":
        """This dataset, marked so executors keep each split's block in memory across jobs."""
        return replace(self, cached=True)

    def array_path(self, i: int, part: str = "") -> str:
        """The ``.npy`` file of array ``i`` (in part ``part`` for a dataset written by a job)."""
        fs = get_fs(self.path)
        folder = fs.join(self.path, part) if part else self.path
        return fs.join(folder, f"{self.arrays[i].name}.npy")

    def read_rows(self, start: int, end: int) -> tuple:
        """The rows ``start:end`` of every array, read straight into numpy (across parts if need be)."""
        if not self.parts:
            return tuple(_read_npy_rows(self.array_path(i), start, end) for i in range(len(self.arrays)))
        pieces = [[] for _ in self.arrays]
        for name, first, last in self.parts:
            lo, hi = max(start, first), min(end, last)
            if lo < hi:
                for i in range(len(self.arrays)):
                    pieces[i].append(_read_npy_rows(self.array_path(i, name), lo - first, hi - first))
        return tuple(np.concatenate(p) if len(p) != 1 else p[0] for p in pieces)

    def to_numpy(self) -> tuple:
        """Every row of every array, read into memory."""
        return self.read_rows(0, self.num_rows)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.name}{list(a.shape)}:{a.dtype}" for a in self.arrays)
        return f"ArrayDataset({self.path!r}, {shapes}, splits={self.num_splits})"


def _row_ranges(num_rows: int, splits: int) -> tuple:
    splits = max(1, min(splits, num_rows)) if num_rows else 1
    bounds = np.linspace(0, num_rows, splits + 1).astype(np.int64)
    return tuple((int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))


def from_numpy(*arrays, splits: int = 8, path: str | None = None, names=None) -> ArrayDataset:
    """Write row-aligned ``arrays`` (e.g. ``X, y``) as a dataset of ``splits`` row ranges."""
    if not arrays:
        raise InputError("from_numpy needs at least one array")
    arrays = [np.ascontiguousarray(a) for a in arrays]
    rows = {a.shape[0] if a.ndim else -1 for a in arrays}
    if len(rows) != 1 or -1 in rows:
        raise InputError(f"from_numpy arrays must share their first axis, got shapes {[a.shape for a in arrays]}")
    for a in arrays:
        if a.dtype.hasobject:
            raise InputError("from_numpy cannot store arrays of dtype object")
    names = list(names or array_names(len(arrays)))
    if path is None:
        path = tempfile.mkdtemp(prefix="mapred-dataset-", dir=dataset_tmp_root())
    fs = get_fs(path)
    fs.makedirs(path)
    for name, a in zip(names, arrays):
        with fs.open_write(fs.join(path, f"{name}.npy")) as f:
            np.lib.format.write_array(f, a, allow_pickle=False)
    infos = tuple(ArrayInfo(n, a.dtype.str, tuple(a.shape)) for n, a in zip(names, arrays))
    ds = ArrayDataset(path, uuid.uuid4().hex, int(arrays[0].shape[0]), infos,
                      _row_ranges(int(arrays[0].shape[0]), splits))
    write_meta(path, ds.id, ds.num_rows, infos, ds.ranges)
    return ds


def load_dataset(path: str, splits: int | None = None) -> ArrayDataset:
    """Reopen a dataset directory written by ``from_numpy`` (optionally re-split)."""
    fs = get_fs(path)
    meta_path = fs.join(path, META_NAME)
    if not fs.exists(meta_path):
        raise InputError(f"{path!r} is not a mapred array dataset (no {META_NAME})")
    with fs.open_read(meta_path) as f:
        try:
            meta = msgpack.unpackb(f.read())
        except Exception as exc:
            raise InputError(f"dataset metadata {meta_path!r} is unreadable: {exc}") from None
    if not isinstance(meta, dict) or meta.get("version") != FORMAT_VERSION:
        raise InputError(f"dataset {path!r} has format version {meta.get('version') if isinstance(meta, dict) else '?'}, "
                         f"expected {FORMAT_VERSION}")
    infos = tuple(ArrayInfo(n, d, tuple(s)) for n, d, s in meta["arrays"])
    ranges = tuple(tuple(r) for r in meta["ranges"])
    if splits is not None:
        ranges = _row_ranges(meta["num_rows"], splits)
    parts = tuple((str(n), int(a), int(b)) for n, a, b in meta.get("parts", ()))
    return ArrayDataset(path, meta["id"], meta["num_rows"], infos, ranges, parts=parts)


def write_meta(path: str, ds_id: str, num_rows: int, infos: tuple, ranges: tuple, parts: tuple = ()) -> None:
    """``_dataset.mpk``: what ``load_dataset`` reads back."""
    fs = get_fs(path)
    meta = {"version": FORMAT_VERSION, "id": ds_id, "num_rows": num_rows,
            "arrays": [[i.name, i.dtype, list(i.shape)] for i in infos],
            "ranges": [list(r) for r in ranges], "parts": [list(p) for p in parts]}
    with fs.open_write(fs.join(path, META_NAME)) as f:
        f.write(msgpack.packb(meta))


def array_names(count: int) -> list[str]:
    """Default names of a dataset's arrays: ``X, y`` for two, ``a0, a1, ...`` otherwise."""
    return ["X", "y"] if count == 2 else [f"a{i}" for i in range(count)]


def write_part(fs, folder: str, arrays: list) -> None:
    """One part of a job-written dataset: a ``.npy`` per array in ``folder``."""
    fs.makedirs(folder)
    for name, a in zip(array_names(len(arrays)), arrays):
        with fs.open_write(fs.join(folder, f"{name}.npy")) as f:
            np.lib.format.write_array(f, np.ascontiguousarray(a), allow_pickle=False)


def finish_parts(path: str, part_names: list[str]) -> ArrayDataset | None:
    """Write the metadata of a dataset whose parts jobs wrote (row counts from the ``.npy`` headers)."""
    fs = get_fs(path)
    parts, infos, row = [], None, 0
    for name in sorted(part_names):
        files = sorted(n for n in fs.listdir(fs.join(path, name)) if n.endswith(".npy"))
        shapes = []
        for n in files:
            with fs.open_read(fs.join(path, name, n)) as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(f)
            shapes.append((n[:-4], dtype.str, shape))
        rows = shapes[0][2][0] if shapes else 0
        if rows:
            named = {n: (d, s) for n, d, s in shapes}
            infos = infos or tuple(ArrayInfo(n, named[n][0], named[n][1]) for n in array_names(len(files)))
            parts.append((name, row, row + rows))
            row += rows
    if infos is None:
        return None
    infos = tuple(ArrayInfo(i.name, i.dtype, (row, *i.shape[1:])) for i in infos)
    ranges = tuple((a, b) for _, a, b in parts)
    ds_id = uuid.uuid4().hex
    write_meta(path, ds_id, row, infos, ranges, tuple(parts))
    return ArrayDataset(path, ds_id, row, infos, ranges, parts=tuple(parts))


def _read_npy_rows(path: str, start: int, end: int) -> np.ndarray:
    """Rows ``start:end`` of a C-ordered ``.npy`` file, with one seek and one read."""
    with get_fs(path).open_read(path) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if fortran:
            raise InputError(f"{path}: Fortran-ordered arrays are not supported")
        header_end = f.tell()
        row_items = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        row_bytes = row_items * dtype.itemsize
        f.seek(header_end + start * row_bytes)
        raw = f.read((end - start) * row_bytes)
    if len(raw) != (end - start) * row_bytes:
        raise InputError(f"{path}: truncated array file (wanted rows {start}:{end})")
    return np.frombuffer(raw, dtype=dtype).reshape((end - start, *shape[1:])).copy()


def is_dataset_dir(path: str) -> bool:
    """Whether ``path`` holds a dataset's metadata file."""
    fs = get_fs(path)
    return fs.isdir(path) and fs.exists(fs.join(path, META_NAME))


def dataset_tmp_root() -> str:
    """The directory ``from_numpy`` writes datasets under when no path is given."""
    return os.environ.get("MAPRED_TMP", tempfile.gettempdir())
