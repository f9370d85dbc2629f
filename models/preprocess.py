"""Data preparation as jobs: moments and standardisation, deterministic splits, CSV, one-hot, hashing.

- ``moments``: map emits a block's (n, mean, M2); combiner and reducer merge
  them with Chan's parallel formula — associative, so any number of combines
  gives the same result, and numerically sound unlike raw sums of squares.
- ``split``: map assigns each row to a part by a hash of (seed, row id), so
  the split is the same for any number of splits and workers; the driver
  writes each part as a new array dataset.
- ``read_csv``: mapred's CSV reader parses each split into numeric blocks
  (naming the file and byte offset of a bad row); map tasks write them as
  the parts of an array dataset, in file and row order.
"""
from __future__ import annotations

import os
import tempfile
import zlib

import numpy as np

import mapred
from mapred.errors import ModelError

from ._common import RECORDS, Data, Runner, as_data, block_start, check_width, row_hash, unpack
from .base import Estimator, translate_errors
from .persist import register
from .protocol import DataError, TransformerMixin


def merge_moments(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Merge two [n, mean..., M2...] vectors (Chan et al.)."""
    na, nb = a[0], b[0]
    if na == 0:
        return b
    if nb == 0:
        return a
    d = (len(a) - 1) // 2
    n = na + nb
    delta = b[1:d + 1] - a[1:d + 1]
    mean = a[1:d + 1] + delta * (nb / n)
    m2 = a[d + 1:] + b[d + 1:] + delta * delta * (na * nb / n)
    return np.concatenate([[n], mean, m2])


def block_moments(X: np.ndarray) -> np.ndarray:
    """[n, mean, M2] of one block's columns."""
    mean = X.mean(axis=0)
    return np.concatenate([[len(X)], mean, ((X - mean) ** 2).sum(axis=0)])


def _merge_job(key, values):
    acc = None
    for v in values:
        acc = np.asarray(v, dtype=np.float64) if acc is None else merge_moments(acc, v)
    yield key, acc


def moments(data: Data, runner: Runner, by_label: bool = False):
    """Row count, column means and (population) variances of a dataset, by one map-reduce.

    With ``by_label`` the statistics are per label: returns {label: (n, mean, var)}.
    """
    sparse, width = data.sparse, data.n_features

    def map_batch(block):
        X, y = unpack(block, sparse, width)
        X = X.toarray() if sparse else np.asarray(X, dtype=np.float64)
        mapred.counter(*RECORDS, X.shape[0])
        if not by_label:
            yield 0, block_moments(X)
            return
        for label in np.unique(y):
            yield (label.item() if isinstance(label, np.generic) else label), block_moments(X[y == label])

    job = mapred.Job(map_batch=map_batch, combiner=_merge_job, reducer=_merge_job,
                     output_format="msgpack", name="models.moments")
    pairs, counters = runner.run(job, data.ds)
    runner.last_records = int(counters.get(RECORDS[0], {}).get(RECORDS[1], 0))
    if not pairs:
        raise ModelError("the dataset is empty (0 rows)")
    out = {}
    for key, v in pairs:
        v = np.asarray(v)
        d = (len(v) - 1) // 2
        out[key] = (int(v[0]), v[1:d + 1], v[d + 1:] / v[0])
    return out if by_label else out[0]


@register
class StandardScaler(TransformerMixin, Estimator):
    """Zero mean, unit variance per feature; mean and variance by one reduce."""

    _param_names = ("with_mean", "with_std")
    _array_names = ("mean_", "var_", "scale_")
    _attr_names = ("n_samples_seen_", "n_features_in_")

    def __init__(self, with_mean=True, with_std=True):
        self.with_mean, self.with_std = with_mean, with_std

    def fit(self, dataset, y=None, *, workers=None, cluster=None):
        """Mean and variance of every feature by one map-reduce pass (after the scan); y is ignored."""
        data = as_data(dataset, need_y=False)
        if data.sparse:
            raise DataError("StandardScaler takes dense features; sparse input is not supported")
        runner = self._runner(workers, cluster)
        from .scan import scan
        scan(data, runner, labels=False)
        n, self.mean_, self.var_ = moments(data, runner)
        scale = np.sqrt(self.var_)
        self.scale_ = np.where(scale == 0, 1.0, scale)
        self.n_samples_seen_, self.n_features_in_ = n, data.n_features
        self.fitted_ = True
        return self

    def transform(self, X):
        """Standardise X locally with the fitted mean and scale."""
        X = self._width(X).astype(np.float64)
        if self.with_mean:
            X = X - self.mean_
        return X / self.scale_ if self.with_std else X

    def fit_transform(self, X, y=None, **kw):
        """``fit`` on X, then ``transform`` it."""
        return self.fit(X, **kw).transform(X)

    def transform_dataset(self, dataset, *, path=None, splits=None, workers=None, cluster=None):
        """Standardise a whole dataset by a map-only job; returns a new dataset (labels kept)."""
        data = as_data(dataset, need_y=False)
        transform = self.transform

        def fn(X, y):
            return (transform(X),) if y is None else (transform(X), y)

        return map_arrays(data, fn, path=path, splits=splits, workers=workers, cluster=cluster)

    def _predict_block(self, X):
        return self.transform(X)


def map_arrays(data: Data, fn, *, path=None, splits=None, workers=None, cluster=None):
    """Run ``fn(X, y) -> tuple of row-aligned arrays`` on every block; the job writes a new dataset.

    A map-only job with ``output_format="dataset"``: each task writes its
    block's result as one part of the new dataset, so nothing passes through
    the driver, and the parts keep the row order of the input's splits.
    """
    sparse, width = data.sparse, data.n_features

    def map_batch(block):
        X, y = unpack(block, sparse, width)
        yield None, tuple(np.asarray(a) for a in fn(X, y))

    target = path or tempfile.mkdtemp(prefix="mapred-arrays-")
    job = mapred.Job(map_batch=map_batch, output_format="dataset", name="models.map_arrays")
    with translate_errors():
        Runner(workers, cluster).run(job, data.ds, output=target)
    try:
        return mapred.load_dataset(target, splits=splits or data.ds.num_splits)
    except mapred.errors.InputError:
        raise ModelError("the transformed dataset is empty") from None


def split(dataset, fractions, seed=0, *, path=None, workers=None, cluster=None):
    """Split a dataset into parts by a hash of (seed, row id): deterministic for any splits/workers.

    ``fractions`` (e.g. ``[0.8, 0.1, 0.1]``) must be positive and sum to 1.
    Returns one engine dataset per part (``path`` given: written under ``path/part-i``).
    Each part is a map-only job whose tasks write their rows of that part as a
    part of the new dataset (``output_format="dataset"``): nothing passes
    through the driver, and rows keep their order.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if len(fractions) < 2 or (fractions <= 0).any() or abs(fractions.sum() - 1.0) > 1e-9:
        raise ModelError(f"fractions must be positive and sum to 1, got {fractions.tolist()}")
    data = dataset if isinstance(dataset, Data) else as_data(dataset, need_y=False)
    edges = np.cumsum(fractions)[:-1]
    runner = Runner(workers, cluster)
    parts = []
    for p in range(len(fractions)):
        target = tempfile.mkdtemp(prefix="mapred-split-") if path is None else f"{path.rstrip('/')}/part-{p}"
        job = mapred.Job(map_batch=_rows_of_part(edges, seed, p), output_format="dataset",
                         name=f"models.split.{p}")
        with translate_errors():
            runner.run(job, data.ds, output=target)
        try:
            ds = mapred.load_dataset(target)
        except mapred.errors.InputError:
            raise ModelError(f"split part {p} (fraction {fractions[p]}) is empty; use more data") from None
        ds = mapred.load_dataset(target, splits=max(1, min(data.ds.num_splits, ds.num_rows)))
        parts.append(Data(ds, data.n_features, data.sparse, data.has_y) if data.sparse else ds)
    return parts


def _rows_of_part(edges, seed, p):
    """A ``map_batch`` keeping the rows of a block whose hashed row id falls in part ``p``."""
    def map_batch(block):
        arrays = block if isinstance(block, tuple) else (block,)
        start = block_start()
        part = np.searchsorted(edges, row_hash(np.arange(start, start + len(arrays[0])), seed), side="right")
        mask = part == p
        if mask.any():
            yield None, tuple(a[mask] for a in arrays)
    return map_batch


def read_csv(paths, label=None, *, header=True, delimiter=",", dtype=np.float64, splits=8,
             path=None, workers=None, cluster=None):
    """Load CSV text (local or ``mrfs://``) into an array dataset of (X, y) or (X,).

    The rows are parsed by mapred's CSV reader (``mapred.formats.csv``, with
    ``record="array"``: each block of records arrives as one numeric array) in
    a map-only job whose tasks write their blocks as parts of the dataset
    (``output_format="dataset"``), so the data never passes through the
    driver; rows keep file and line order.  ``label``: the name (with a
    header) or index of the label column.  A row with the wrong number of
    fields or an unparsable value raises ``ModelError`` naming the file and
    the byte offset of the row.
    """
    names = _csv_names(paths, header, delimiter)
    if isinstance(label, str) and label not in names:
        raise ModelError(f"label column {label!r} is not in the CSV header {names}")
    col = None if label is None else (names.index(label) if isinstance(label, str) else int(label))
    job = mapred.Job(map_batch=_csv_blocks(col, dtype), output_format="dataset", name="models.read_csv",
                     input_format="csv", input_options={"header": header, "delimiter": delimiter,
                                                        "record": "array", "dtype": np.dtype(dtype).str})
    target = path or tempfile.mkdtemp(prefix="mapred-csv-")
    try:
        with translate_errors():
            Runner(workers, cluster).run(job, paths, output=target)
    except mapred.errors.JobFailed as exc:
        if exc.cause.get("type") in ("FormatError", "InputError"):
            raise ModelError(f"CSV {exc.cause.get('message', exc)}") from None
        raise
    try:
        ds = mapred.load_dataset(target, splits=splits)
    except mapred.errors.InputError:
        raise ModelError(f"CSV input {paths!r} holds no data rows") from None
    n_splits = max(1, min(splits, ds.num_rows))
    return ds if n_splits == ds.num_splits else mapred.load_dataset(target, splits=n_splits)


def _csv_names(paths, header: bool, delimiter: str) -> list[str]:
    """The column names of the first file: its header row (parsed with CSV quoting), or ``0, 1, ...``."""
    import csv
    import io
    patterns = [paths] if isinstance(paths, str) else list(paths)
    first = mapred.filesystem(patterns[0]).expand(patterns[0])
    if not first:
        raise ModelError(f"CSV input {paths!r} holds no files")
    with mapred.open(first[0]) as f:
        head = f.read(1 << 16).decode("utf-8", errors="replace")
    row = next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter), [])
    if not row:
        raise ModelError(f"CSV input {paths!r} holds no data rows")
    return row if header else [str(i) for i in range(len(row))]


def _csv_blocks(col, dtype):
    """A ``map_batch`` that turns each parsed block into an (X, y) or X block of the dataset."""
    def blocks(table):
        table = np.asarray(table, dtype=dtype)
        yield None, (table if col is None else (np.delete(table, col, axis=1), table[:, col]))
    return blocks


@register
class OneHotEncoder(TransformerMixin, Estimator):
    """One column per distinct value of each input column; categories found by map-reduce."""

    _param_names = ("handle_unknown",)
    _array_names = ()
    _attr_names = ("categories_", "n_features_in_")

    def __init__(self, handle_unknown="error"):
        self.handle_unknown = handle_unknown

    def fit(self, dataset, y=None, *, workers=None, cluster=None):
        """The distinct values of every column by one map-reduce pass; y is ignored."""
        data = as_data(dataset, need_y=False)

        def map_batch(block):
            X, _ = unpack(block)
            for j in range(X.shape[1]):
                for v in np.unique(X[:, j]):
                    yield (j, v.item()), 1

        def first(key, values):
            yield key, 1

        job = mapred.Job(map_batch=map_batch, combiner=first, reducer=first,
                         output_format="msgpack", name="models.onehot")
        pairs, _ = self._runner(workers, cluster).run(job, data.ds)
        cats = [[] for _ in range(data.n_features)]
        for (j, v), _ in pairs:
            cats[j].append(v)
        self.categories_ = [sorted(c) for c in cats]
        self.n_features_in_ = data.n_features
        self.fitted_ = True
        return self

    def transform(self, X):
        """One-hot columns of X; unseen values are an error naming the row."""
        X = self._width(X)
        cols = []
        for j, cats in enumerate(self.categories_):
            cats = np.asarray(cats)
            pos = np.searchsorted(cats, X[:, j])
            pos = np.clip(pos, 0, len(cats) - 1)
            known = cats[pos] == X[:, j]
            if not known.all() and self.handle_unknown == "error":
                row = int(np.argmin(known))
                raise ModelError(f"row {row}: column {j} value {X[row, j].item()!r} was not seen in fit")
            cols.append((np.arange(len(cats)) == pos[:, None]) & known[:, None])
        return np.hstack(cols).astype(np.float64)


def hash_features(tokens_per_row, n_features=2 ** 18):
    """Feature hashing of token lists into a CSR count matrix (stable crc32, signed like sklearn)."""
    import scipy.sparse as sp
    indptr, indices, values = [0], [], []
    for tokens in tokens_per_row:
        for t in tokens:
            h = zlib.crc32(t.encode("utf-8"))
            indices.append(h % n_features)
            values.append(1.0 if h & 0x80000000 == 0 else -1.0)
        indptr.append(len(indices))
    X = sp.csr_matrix((values, indices, indptr), shape=(len(indptr) - 1, n_features))
    X.sum_duplicates()
    return X


def write_lines(lines, path=None) -> str:
    """Write documents one per line (newlines inside a document become spaces); return the path."""
    if path is None:
        fd, path = tempfile.mkstemp(prefix="mapred-docs-", suffix=".txt")
        os.close(fd)
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(str(line).replace("\r", " ").replace("\n", " ") + "\n")
    return path
