"""Batch prediction over record formats: records in, the model's rows out, predictions back as records.

The record formats (msgpack record files, CSV with a header, JSON lines,
Parquet, Avro, the sequence file) hand a map task a list of records per
batch, in file order.  This module turns such a batch into the model's input
rows and the model's outputs back into one record per input record, so the
map-only job's parts hold row ``i`` out for record ``i`` in.

What a record gives the model (``columns`` names the fields to take):

- a pair ``(key, value)`` (record files, sequence files): its value, as below;
  the key is kept as the output's key.
- a list or tuple of numbers: the row; a single number: a row of one.
- a string: a document (text models); an integer: a user id (ALS).
- a dict (CSV, Parquet, Avro, JSON objects): ``columns`` in order; without
  them, every numeric field in the record's order (there must be as many as
  the model has features), or a text model's ``text`` field (or the one
  string field), or ALS's ``user_id`` field.

Each output record holds the predictor's outputs by name (vectors as lists;
in CSV, flattened to ``name_0``, ``name_1`` ...), after the ``keep`` fields
copied from the input record (an id, say).
"""
from __future__ import annotations

import numbers

import numpy as np

from mapred.errors import ModelError

#: record formats whose records are (key, value) pairs
PAIR_FORMATS = ("records", "seq")
#: the output format a record format's predictions are written in by default
OUTPUT_FOR = {"records": "msgpack", "seq": "seq", "csv": "csv", "jsonl": "jsonl", "parquet": "parquet",
              "avro": "avro"}
OUTPUT_FORMATS = ("msgpack", "seq", "csv", "jsonl", "parquet", "avro")
#: what ``input_format=`` takes (the engine's own list, ``mapred.Job``'s ``input_format``)
INPUT_FORMATS = ("text", "records", "csv", "jsonl", "parquet", "avro", "seq")
# the engine's extension rule (docs/formats.md "Choosing a format"), as a user of the public API sees it
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl",
               ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet", ".avro": "avro", ".seq": "seq",
               ".mpk": "records", ".msgpack": "records"}
_COMPRESSED = (".gz", ".bz2", ".zst")


def format_of(path: str) -> str:
    """The format the engine reads ``path`` as, by its extension (compressed text and CSV/JSON lines too)."""
    low = path.lower()
    for ext in _COMPRESSED:
        if low.endswith(ext):
            low = low[:-len(ext)]
            break
    return next((fmt for ext, fmt in _EXTENSIONS.items() if low.endswith(ext)), "text")


def _kind(pred) -> str:
    name = type(pred).__name__
    return "text" if name == "TextPredictor" else "als" if name == "ALSPredictor" else "numbers"


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class RowReader:
    """Turns records into a predictor's input: an array of rows, documents or user ids."""

    def __init__(self, pred, fmt: str, columns=None, keep=None) -> None:
        self.kind = _kind(pred)
        self.width = int(pred.input.shape[1]) if self.kind == "numbers" else 1
        self.pairs = fmt in PAIR_FORMATS
        self.columns = list(columns) if columns else None
        self.keep = list(keep or ())

    def values(self, batch: list) -> tuple[list, list, list]:
        """(keys, record values, kept fields per record) of one batch."""
        if self.pairs:
            keys = [p[0] for p in batch]
            vals = [p[1] for p in batch]
        else:
            keys, vals = [None] * len(batch), list(batch)
        kept = [self._kept(v, i) for i, v in enumerate(vals)] if self.keep else [{}] * len(vals)
        return keys, vals, kept

    def _kept(self, value, i: int) -> dict:
        if not isinstance(value, dict):
            raise ModelError(f"record {i} of the batch is a {type(value).__name__}; keep= needs records with fields")
        missing = [k for k in self.keep if k not in value]
        if missing:
            raise ModelError(f"record {i} of the batch has no field(s) {missing} to keep (fields: {list(value)})")
        return {k: value[k] for k in self.keep}

    def rows(self, values: list, start: int = 0):
        """The model input for ``values`` (``start``: the first record's position, for messages)."""
        if self.kind == "text":
            return np.array([self._one(v, i + start, str, "text") for i, v in enumerate(values)], dtype=object)
        if self.kind == "als":
            return np.array([int(self._one(v, i + start, int, "user_id")) for i, v in enumerate(values)],
                            dtype=np.int64)
        X = np.empty((len(values), self.width))
        for i, v in enumerate(values):
            X[i] = self._numbers(v, i + start)
        return X

    def _one(self, value, i: int, typ, default_field: str):
        if isinstance(value, dict):
            field = self.columns[0] if self.columns else default_field
            if field not in value:
                fit = [k for k, x in value.items() if isinstance(x, typ) and not isinstance(x, bool)]
                if self.columns or len(fit) != 1:
                    raise ModelError(f"record {i} has no field {field!r} (fields: {list(value)}); "
                                     "name the model's input field with columns=[...]")
                field = fit[0]
            value = value[field]
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        ok = isinstance(value, str) if typ is str else isinstance(value, numbers.Integral) and \
            not isinstance(value, bool)
        if not ok:
            want = "a string (a document)" if typ is str else "an integer user id"
            raise ModelError(f"record {i}: {value!r} is not {want}")
        return value

    def _numbers(self, value, i: int) -> list:
        if isinstance(value, dict):
            if self.columns:
                missing = [c for c in self.columns if c not in value]
                if missing:
                    raise ModelError(f"record {i} has no field(s) {missing} (fields: {list(value)})")
                value = [value[c] for c in self.columns]
            else:
                nums = [k for k, x in value.items() if _is_number(x) and k not in self.keep]
                if len(nums) != self.width:
                    raise ModelError(f"record {i} has {len(nums)} numeric fields {nums}; the model takes "
                                     f"{self.width} features: name them with columns=[...]")
                value = [value[k] for k in nums]
        elif _is_number(value):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(_is_number(x) for x in value):
            raise ModelError(f"record {i}: {_short(value)} is not a row of numbers")
        if len(value) != self.width:
            raise ModelError(f"record {i} has {len(value)} values; the model takes {self.width} features")
        return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def output_records(pred, out: dict, kept: list, flat: bool) -> list[dict]:
    """One record per row: the kept fields, then each output (``flat``: vectors as ``name_j`` fields)."""
    cols = [(o.name, np.asarray(out[o.name])) for o in pred.outputs]
    recs = []
    for i, fields in enumerate(kept):
        rec = dict(fields)
        for name, col in cols:
            v = _plain(col[i])
            if flat and isinstance(v, list):
                rec.update({f"{name}_{j}": x for j, x in enumerate(np.asarray(v).reshape(-1).tolist())})
            else:
                rec[name] = v
        recs.append(rec)
    return recs
