"""The first pass of a fit: row count, label set and the first bad row, by one map-reduce.

Checking input in a pass of its own lets the driver raise a clear
``ModelError`` (naming the row) before any training pass runs, instead of a
task failing and being retried.  Map emits small keyed facts per block; the
combiner and reducer add counts and keep the smallest bad row id.
"""
from __future__ import annotations

import numpy as np

import mapred
from ._common import RECORDS, Data, Runner, block_start, rows_where, unpack
from .protocol import DataError

_MIN_KEYS = ("bad_feature", "bad_label", "bad_negative", "bad_target")


def _merge(key, values):
    kind = key[0] if isinstance(key, tuple) else key
    if kind in _MIN_KEYS:
        yield key, min(values)
    else:
        yield key, sum(values)


def _label_key(v):
    return v.item() if isinstance(v, np.generic) else v


def scan(data: Data, runner: Runner, *, labels: bool = True, classes=None,
         nonnegative: bool = False) -> dict:
    """Validate a dataset and describe it: {"n": rows, "labels": {label: count}}.

    Raises ``DataError`` (a ``ModelError`` and ``ValueError``) naming the first row with a NaN/infinite feature, a
    label outside ``classes`` (when declared), or a negative feature when
    ``nonnegative`` (multinomial naive Bayes counts).
    """
    sparse, width = data.sparse, data.n_features
    declared = None if classes is None else np.asarray(classes)
    want_labels = labels and data.has_y

    def map_batch(block):
        X, y = unpack(block, sparse, width)
        start = block_start()
        n = X.shape[0]
        mapred.counter(*RECORDS, n)
        yield "n", n
        bad = rows_where(X, lambda v: ~np.isfinite(v)) if X.dtype.kind in "fc" else None
        if bad is not None:
            yield ("bad_feature",), start + bad
        negative = rows_where(X, lambda v: v < 0) if nonnegative else None
        if negative is not None:
            yield ("bad_negative",), start + negative
        if y is not None and y.dtype.kind == "f" and not np.isfinite(y).all():
            yield ("bad_target",), start + int(np.argmax(~np.isfinite(y)))
        if want_labels and y is not None:
            if declared is not None:
                outside = ~np.isin(y, declared)
                if outside.any():
                    yield ("bad_label",), start + int(np.argmax(outside))
            values, counts = np.unique(y, return_counts=True)
            for v, c in zip(values, counts):
                yield ("label", _label_key(v)), int(c)

    job = mapred.Job(map_batch=map_batch, combiner=_merge, reducer=_merge,
                     output_format="msgpack", name="models.scan")
    pairs, counters = runner.run(job, data.ds)
    runner.last_records = int(counters.get(RECORDS[0], {}).get(RECORDS[1], 0))
    facts = {}
    label_counts = {}
    for k, v in pairs:
        if isinstance(k, tuple) and k[0] == "label":
            label_counts[k[1]] = v
        else:
            facts[k[0] if isinstance(k, tuple) else k] = v
    if facts.get("bad_feature") is not None:
        raise DataError(f"row {facts['bad_feature']}: NaN or infinite feature value")
    if facts.get("bad_target") is not None:
        raise DataError(f"row {facts['bad_target']}: label (y) is NaN or infinite")
    if facts.get("bad_label") is not None:
        raise DataError(f"row {facts['bad_label']}: label outside the declared classes "
                         f"{declared.tolist()}")
    if facts.get("bad_negative") is not None:
        raise DataError(f"row {facts['bad_negative']}: negative feature value "
                         "(multinomial naive Bayes needs counts; Negative values in data)")
    n = int(facts.get("n", 0))
    if n == 0:
        raise DataError("the dataset is empty (0 rows)")
    return {"n": n, "labels": label_counts}


def classes_from(info: dict, declared=None) -> np.ndarray:
    """The sorted class labels; declared classes win when given."""
    if declared is not None:
        return np.asarray(sorted(declared))
    classes = np.asarray(sorted(info["labels"]))
    if len(classes) < 2:
        raise DataError(f"y holds a single class ({classes.tolist()}); a classifier needs more than one class")
    return classes
