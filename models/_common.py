"""Shared plumbing of every model: datasets in, jobs run, sums added, input checked.

Every model is a driver loop over mapred jobs whose map functions compute
per-split sufficient statistics and whose combiner and reducer add them (the
"summation form").  The helpers here are the pieces all of them share, so that
each model module only holds its own arithmetic:

- ``Data`` wraps a dataset with what models need to know about it (sparse or
  dense, number of features), because an engine dataset is only row-aligned
  arrays;
- ``sum_job`` builds the job "map a block to one float64 vector, add the
  vectors" that most passes are;
- ``rows_where`` finds the first row with a bad entry (NaN, negative), dense or CSR;
- ``Runner`` carries ``workers`` / ``cluster`` to every job of a fit and keeps
  a history of passes (loss, seconds, records read).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

import mapred
from mapred.errors import ModelError

from .protocol import DataError

RECORDS = ("models", "records")


@dataclass
class Data:
    """A dataset plus how models read its blocks.

    Dense datasets hold ``X`` (and optionally ``y``).  Sparse datasets (text
    features) hold row-aligned padded index/value arrays, ELL layout: row i's
    non-zeros are ``idx[i, :]`` / ``val[i, :]`` with padding index -1, so they
    split on any row boundary like dense arrays do.
    """

    ds: Any
    n_features: int
    sparse: bool = False
    has_y: bool = True

    @property
    def num_rows(self) -> int:
        return int(self.ds.num_rows)


def _array_shapes(ds) -> list[tuple]:
    """Shapes of a dataset's arrays, whatever form ``ds.arrays`` takes."""
    shapes = []
    for info in ds.arrays:
        if isinstance(info, dict):
            shapes.append(tuple(info["shape"]))
        elif hasattr(info, "shape"):
            shapes.append(tuple(info.shape))
        else:
            shapes.append(tuple(info[1]))
    return shapes


def as_data(data, y=None, *, splits: int = 4, need_y: bool = True) -> Data:
    """Accept a ``Data``, an engine dataset, or numpy / scipy-sparse ``X`` (and ``y``); return a ``Data``.

    Numpy input is checked the way scikit-learn checks it (2-d, numeric, not
    complex, at least one row and one feature, y one label per row), with
    ``DataError`` (a ``ValueError``) naming what is wrong; NaN rows are found
    by the fit's scan pass, which names the row.
    """
    if isinstance(data, Data):
        if need_y and not data.has_y:
            raise DataError("this model needs labels: the dataset has no y array")
        return data
    if hasattr(data, "num_splits"):
        shapes = _array_shapes(data)
        if len(shapes) == 0 or shapes[0][0] == 0:
            raise DataError("the dataset is empty (0 rows)")
        if need_y and len(shapes) < 2:
            raise DataError("this model needs labels: the dataset has one array (X) and no y")
        width = shapes[0][1] if len(shapes[0]) > 1 else 1
        return Data(data, int(width), has_y=len(shapes) >= 2)
    if hasattr(data, "tocsr"):
        return _sparse_data(data, y, splits, need_y)
    X = check_matrix(data)
    parts = max(1, min(splits, len(X)))
    if y is None:
        if need_y:
            raise DataError("this model requires y to be passed, but the target y is None (pass y, or a dataset with a y array)")
        return Data(mapred.from_numpy(X, splits=parts), X.shape[1], has_y=False)
    y = check_labels(y, len(X))
    return Data(mapred.from_numpy(X, y, splits=parts), X.shape[1])


def check_matrix(X) -> np.ndarray:
    """Numpy X as scikit-learn accepts it: 2-d, real numbers, >= 1 row and 1 feature."""
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise DataError("Complex data not supported")
    if X.dtype.kind not in "fiub":
        X = X.astype(np.float64)  # object arrays of numbers; anything else raises TypeError here
    if X.ndim != 2:
        raise DataError(f"Expected 2D array, got {X.ndim}D array instead (shape {X.shape}): X must be "
                        "rows x features; reshape your data with X.reshape(-1, 1) for one feature "
                        "or X.reshape(1, -1) for one sample")
    if X.shape[0] == 0:
        raise DataError(f"the dataset is empty: found array with 0 sample(s) (shape={X.shape}) "
                        "while a minimum of 1 is required")
    if X.shape[1] == 0:
        raise DataError(f"found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 "
                        "is required.")
    if X.dtype.kind == "b":
        X = X.astype(np.float64)
    return X


def check_class_labels(y) -> None:
    """Refuse a continuous target for a classifier, as scikit-learn does ("Unknown label type")."""
    if y is None or hasattr(y, "num_splits") or isinstance(y, Data):
        return
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.isfinite(y).all() and not np.array_equal(y, np.round(y)):
        raise DataError("Unknown label type: continuous. A classifier needs class labels; "
                        "y holds non-integer floats")


def check_labels(y, rows: int) -> np.ndarray:
    """y as one label per row; a column vector is raveled with scikit-learn's conversion warning."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        import warnings
        try:
            from sklearn.exceptions import DataConversionWarning as warning
        except ImportError:  # pragma: no cover
            warning = UserWarning
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the "
                      "shape of y to (n_samples, ), for example using ravel().", warning, stacklevel=4)
        y = y.ravel()
    if y.ndim != 1:
        raise DataError(f"y must hold one label per row (1-d), got shape {y.shape}")
    if len(y) != rows:
        raise DataError(f"y has {len(y)} rows but X has {rows}")
    if y.dtype.kind == "O":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            y = y.astype(str)
    return y


def _sparse_data(X, y, splits: int, need_y: bool) -> Data:
    """A scipy sparse X as an ELL dataset (the layout the sparse models read)."""
    X = X.tocsr()
    if X.shape[0] == 0:
        raise DataError(f"the dataset is empty: found array with 0 sample(s) (shape={X.shape})")
    idx, val = csr_to_ell(X)
    parts = max(1, min(splits, X.shape[0]))
    if y is None:
        if need_y:
            raise DataError("this model requires y to be passed, but the target y is None (pass y, or a dataset with a y array)")
        return Data(mapred.from_numpy(idx, val, splits=parts), X.shape[1], sparse=True, has_y=False)
    y = check_labels(y, X.shape[0])
    return Data(mapred.from_numpy(idx, val, y, splits=parts), X.shape[1], sparse=True)


def cached(data: Data) -> Data:
    """The same data marked cached: executors keep parsed blocks, so later passes read nothing."""
    ds = data.ds.cache() if hasattr(data.ds, "cache") else data.ds
    return Data(ds, data.n_features, data.sparse, data.has_y)


def unpack(block, sparse: bool = False, n_features: int = 0):
    """A block as ``(X, y)``: ``y`` is None for unlabelled data; sparse X becomes CSR."""
    arrays = block if isinstance(block, tuple) else (block,)
    if sparse:
        X = ell_to_csr(arrays[0], arrays[1], n_features)
        y = arrays[2] if len(arrays) > 2 else None
        return X, y
    X = arrays[0]
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    return X, (arrays[1] if len(arrays) > 1 else None)


def ell_to_csr(idx: np.ndarray, val: np.ndarray, n_features: int):
    """Padded (ELL) rows to a scipy CSR matrix, whole block at once."""
    import scipy.sparse as sp
    mask = idx >= 0
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])
    return sp.csr_matrix((val[mask], idx[mask], indptr), shape=(idx.shape[0], n_features))


def csr_to_ell(X, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """A CSR matrix to padded (ELL) index/value arrays, row-aligned for ``from_numpy``."""
    X = X.tocsr()
    counts = np.diff(X.indptr)
    width = max(1, int(counts.max()) if len(counts) else 1)
    idx = np.full((X.shape[0], width), -1, dtype=np.int32)
    val = np.zeros((X.shape[0], width), dtype=dtype)
    rows = np.repeat(np.arange(X.shape[0]), counts)
    cols = np.arange(len(X.indices)) - np.repeat(X.indptr[:-1], counts)
    idx[rows, cols] = X.indices
    val[rows, cols] = X.data
    return idx, val


def block_start() -> int:
    """The global row id of the current block's first row."""
    return int(mapred.context().split.start)


def rows_where(X, test) -> int | None:
    """The first row with an entry for which ``test`` holds (dense or CSR, never densified)."""
    if hasattr(X, "tocsr"):
        X = X.tocsr()
        hit = test(X.data)
        if not hit.any():
            return None
        return int(np.searchsorted(X.indptr, int(np.argmax(hit)), side="right") - 1)
    hit = test(X)
    if not hit.any():
        return None
    return int(np.argmax(hit.any(axis=1)))


def add_values(key, values: Iterable) -> Iterable:
    """Combiner and reducer of the summation form: the element-wise sum of the vectors."""
    total = None
    for v in values:
        total = np.array(v, dtype=np.float64, copy=True) if total is None else total + v
    yield key, total


def sum_job(stat: Callable, name: str, params: dict | None = None) -> "mapred.Job":
    """A job whose map turns each block into one float64 vector and whose reduce adds them.

    ``stat(block)`` returns the vector (or None to emit nothing).  Counting the
    block's rows into the ``models.records`` counter gives every history its
    "records read".
    """
    def map_batch(block):
        vec = stat(block)
        first = block[0] if isinstance(block, tuple) else block
        mapred.counter(*RECORDS, int(first.shape[0]))
        if vec is not None:
            yield 0, np.asarray(vec, dtype=np.float64)

    return mapred.Job(map_batch=map_batch, combiner=add_values, reducer=add_values,
                      params=params or {}, output_format="msgpack", name=name)


def engine_options(workers=None, cluster=None) -> dict:
    """``job.run`` keyword arguments for a model's job: the caller's engine, else ``models.engine``'s.

    An explicit ``cluster`` (or ``workers``) wins; otherwise the engine block's
    cluster, workers and runner apply (``runner="spark"``: mapred's Spark runner).
    """
    from .protocol import engine_defaults
    defaults = engine_defaults()
    if workers is None and cluster is None:
        workers, cluster = defaults["workers"], defaults["cluster"]
    kw: dict = {"workers": workers}
    if cluster is not None:
        kw["cluster"] = cluster
    elif defaults.get("runner", "local") != "local":
        kw["runner"] = defaults["runner"]
        if defaults.get("spark_master"):
            kw["spark_master"] = defaults["spark_master"]
    return kw


@dataclass
class Runner:
    """Runs a model's jobs with one set of engine options and records each pass."""

    workers: int | None = None
    cluster: Any = None
    history: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.options = engine_options(self.workers, self.cluster)  # models.engine(...) fills the gaps
        self.workers, self.cluster = self.options["workers"], self.options.get("cluster")

    def run(self, job, inputs, output=None):
        """Run a job; return (pairs, counters)."""
        result = job.run(inputs, output=output, overwrite=output is not None, **self.options)
        return result.to_list() if output is None else result, getattr(result, "counters", {})

    def run_sum(self, job, inputs) -> np.ndarray | None:
        """Run a ``sum_job``; return the summed vector (None when no block emitted one)."""
        pairs, counters = self.run(job, inputs)
        self.last_records = int(counters.get(RECORDS[0], {}).get(RECORDS[1], 0))
        return np.asarray(pairs[0][1], dtype=np.float64) if pairs else None

    def record(self, step: int, started: float, **values) -> dict:
        """Append one pass to the history: its number, seconds, records read and ``values``."""
        entry = {"iter": step, "time": time.perf_counter() - started,
                 "records": getattr(self, "last_records", 0)}
        entry.update({k: float(v) for k, v in values.items() if v is not None})
        self.history.append(entry)
        return entry


def check_width(X, expected: int, what: str = "X", model: str = "the model") -> np.ndarray:
    """Local prediction input: 2-d, the fitted width, finite; else ``DataError`` naming the row.

    A 1-d array is refused as scikit-learn refuses it: it is ambiguous (one
    row, or one feature per row), so the message says how to reshape it.
    """
    if not hasattr(X, "tocsr"):
        X = np.asarray(X)
        if X.dtype.kind == "c":
            raise DataError("Complex data not supported")
        if X.dtype.kind not in "fiub":
            X = X.astype(np.float64)
    if X.ndim != 2:
        raise DataError(f"Expected 2D array, got {X.ndim}D array instead: Reshape your data with "
                        "X.reshape(-1, 1) if it has one feature or X.reshape(1, -1) if it is one sample")
    if X.shape[1] != expected:
        raise DataError(f"{what} has {X.shape[1]} features, but {model} is expecting {expected} "
                        f"features as input ({what} has {X.shape[1]} features per row, the model was "
                        f"fitted on {expected})")
    bad = rows_where(X, lambda v: ~np.isfinite(v)) if X.dtype.kind in "fc" else None
    if bad is not None:
        raise DataError(f"{what} row {bad}: NaN or infinite feature value")
    return X


def check_finite_loss(loss: float, step: int, what: str = "loss") -> None:
    """Stop a diverging fit before non-finite weights can be saved, naming the pass."""
    if not np.isfinite(loss):
        raise ModelError(f"training diverged at pass {step}: {what} is {loss}; lower the learning rate")


def seeded_rng(seed, *more) -> np.random.Generator:
    """A generator fixed by the model seed plus e.g. (pass, split): reproducible in any executor."""
    return np.random.default_rng([int(seed or 0)] + [int(m) for m in more])


def row_hash(rows: np.ndarray, seed: int) -> np.ndarray:
    """A uniform [0, 1) value per row id (splitmix64), the same in every process and split."""
    z = rows.astype(np.uint64) + np.uint64((int(seed) * 0x9E3779B97F4A7C15) % 2**64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)
