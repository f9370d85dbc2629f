"""Batch prediction and evaluation of a registered model, as jobs on the cluster.

Batch prediction is a map-only job.  The model's saved files travel once, as
a ``mapred.broadcast`` (decoded once per executor, loaded through the same
checked loader as everywhere), never in each task's closure.  Each map task
predicts its whole block with the same predictor the service uses, so batch
and online predictions agree by construction.

- An array dataset in (``mapred.from_numpy`` / ``load_dataset``): an array
  dataset out (``output_format="dataset"``), one part per split in split
  order, the model's outputs as its arrays (``label``, ``probabilities`` ...
  in the predictor's order), so row ``i`` of the output is input row ``i``.
- Text in: one output line per input line, in order (map-only output keeps a
  split's lines in order and its part number): the first output, then the
  others comma-joined, tab-separated.  A text model takes each line as a
  document; any other model a row of numbers separated by commas or spaces.
  A ``.csv`` file whose first line is all numbers (no header) is read so too.
- Records in (msgpack record files, CSV with a header, JSON lines, Parquet,
  Avro, sequence files; by extension or ``input_format``): one output record
  per input record, in order, in the same format unless ``output_format``
  says otherwise (``records.py`` says how a record becomes a row and a
  prediction a record).
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile

import numpy as np

import mapred
from mapred.errors import InputError, ModelError

from ..registry import Registry
from .errors import InferError

_loaded: dict = {}      # broadcast id -> predictor, per executor process


def _fs(path: str):
    """The file system holding ``path`` (through the public API)."""
    return mapred.filesystem(path)


def _resolve(ref: str, registry: str | None) -> tuple[str, str, str]:
    """(model uri, name, version) of a ``models:/`` reference or a saved model path."""
    if str(ref).startswith("models:/"):
        mv = Registry(registry).resolve(ref)
        return mv.uri, mv.name, str(mv.version)
    return str(ref), str(ref), "-"


def model_files(uri: str) -> dict:
    """Every file of a saved model directory, {relative path: bytes} (what the broadcast carries)."""
    fs = _fs(uri)
    base = uri.rstrip("/") + "/"
    out = {}
    for path in fs.expand(uri):
        with fs.open_read(path) as f:
            out[path[len(base):] if path.startswith(base) else os.path.basename(path)] = f.read()
    if "model.msgpack" not in out:
        raise ModelError(f"{uri} is not a saved model directory (no model.msgpack)")
    return out


def predictor_from_files(files: dict):
    """A predictor from broadcast model files: written to a scratch directory once, loaded, checked."""
    from ..persist import load
    from .predictors import predictor_for
    tmp = tempfile.mkdtemp(prefix="mapred-model-")
    try:
        for rel, data in files.items():
            path = os.path.join(tmp, *rel.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        return predictor_for(load(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _predictor(bc):
    if bc.id not in _loaded:
        _loaded[bc.id] = predictor_from_files(bc.value)
    return _loaded[bc.id]


def _run(pred, X) -> dict:
    try:
        return pred.run(X, {})
    except InferError as exc:
        raise ModelError(exc.message) from None


def _check_rows(pred, X, start: int) -> None:
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            raise ModelError(f"row {start + int(np.argwhere(bad)[0][0])}: NaN or infinite feature value")


def dataset_job(bc, name: str) -> mapred.Job:
    """Map-only: an array dataset's block in, the model's outputs as dataset arrays out."""
    def map_batch(block):
        from .._common import block_start
        pred = _predictor(bc)
        arrays = block if isinstance(block, tuple) else (block,)
        X = arrays[0]
        if type(pred).__name__ == "ALSPredictor":
            X = X.reshape(len(X), -1)[:, 0].astype(np.int64)
        elif X.ndim == 1 and type(pred).__name__ != "TextPredictor":
            X = X.reshape(-1, 1)
        start = block_start()
        _check_rows(pred, X, start)
        out = _run(pred, X)
        yield start, tuple(np.asarray(out[o.name]) for o in pred.outputs)

    return mapred.Job(map_batch=map_batch, output_format="dataset", name=f"predict.{name}")


def text_job(bc, name: str) -> mapred.Job:
    """Map-only: text lines in (documents or rows of numbers), one prediction line out per line."""
    def map_batch(lines):
        pred = _predictor(bc)
        if type(pred).__name__ == "TextPredictor":
            X = np.array(lines, dtype=object)
        else:
            try:
                X = np.array([np.array(line.replace(",", " ").split(), dtype=np.float64) for line in lines])
            except ValueError as exc:
                raise ModelError(f"a line is not a row of numbers: {exc}") from None
            if X.ndim != 2:
                raise ModelError("lines hold different numbers of values")
        if len(X) == 0:
            return
        out = _run(pred, X)
        cols = [np.asarray(out[o.name]) for o in pred.outputs]
        for i in range(len(X)):
            parts = [_fmt(c[i]) for c in cols]
            yield "\t".join(parts), None

    # lines, whatever the extension says (a .csv of numbers is read as rows of text here)
    return mapred.Job(map_batch=map_batch, output_format="text", input_format="text", name=f"predict.{name}")


def _fmt(v) -> str:
    if isinstance(v, np.ndarray):
        return ",".join(_fmt(x) for x in v.tolist())
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v.item() if isinstance(v, np.generic) else v)


def record_job(bc, name: str, fmt: str, output_format: str, columns=None, keep=None,
               input_options: dict | None = None) -> mapred.Job:
    """Map-only: a record format's batches in, one prediction record per input record out."""
    from .records import OUTPUT_FORMATS, RowReader, output_records
    if output_format not in OUTPUT_FORMATS:
        raise ModelError(f"output_format must be one of {OUTPUT_FORMATS} for record input, got {output_format!r}")
    flat = output_format == "csv"
    pairs_out = output_format in ("msgpack", "seq")

    def map_batch(batch):
        pred = _predictor(bc)
        reader = RowReader(pred, fmt, columns, keep)
        where = mapred.context().split
        try:
            keys, values, kept = reader.values(batch)
            X = reader.rows(values)
        except ModelError as exc:
            raise ModelError(f"{where.path} (split {where.index}): {exc}") from None
        if len(X) == 0:
            return
        if X.dtype.kind == "f":
            _check_rows(pred, X, 0)
        recs = output_records(pred, _run(pred, X), kept, flat)
        for key, rec in zip(keys, recs):
            yield (key, rec) if pairs_out else (None, rec)

    return mapred.Job(map_batch=map_batch, input_format=fmt, input_options=dict(input_options or {}),
                      output_format=output_format, name=f"predict.{name}")


def _csv_has_header(path: str) -> bool:
    """Whether a CSV file's first line names columns (a line that is all numbers is data)."""
    with _fs(path).open_read(path) as f:
        first = f.readline(1 << 20).decode("utf-8", errors="replace").strip()
    try:
        [float(v) for v in first.replace(",", " ").split()]
    except ValueError:
        return True
    return not first


def _record_format(input_path: str, input_format: str | None) -> str:
    """The format of ``input_path``'s files: ``input_format``, else their extension's; one for all."""
    from .records import INPUT_FORMATS, format_of
    if input_format is not None:
        if input_format not in INPUT_FORMATS:
            raise InputError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
        return input_format
    found = {}
    for f in _fs(input_path).expand(input_path):
        fmt = format_of(f)
        if fmt == "csv" and not _csv_has_header(f):
            fmt = "text"          # rows of numbers without a header: lines, as before
        found.setdefault(fmt, f)
    if len(found) > 1:
        raise InputError(f"input {input_path} mixes formats: "
                         + ", ".join(f"{fmt} ({path})" for fmt, path in found.items())
                         + "; predict each format apart or pass input_format")
    return next(iter(found), "text")


def prepare(ref: str, input_path: str, registry: str | None = None, *, input_format: str | None = None,
            output_format: str | None = None, columns=None, keep=None, input_options: dict | None = None):
    """(job, inputs, info) for predicting ``input_path`` with the model ``ref`` names.

    ``input_format`` overrides the format the files' extensions say;
    ``output_format`` the records' output format (default: the input's);
    ``columns`` names the fields a record's features (or document, or user
    id) come from; ``keep`` fields copied to each output record.
    """
    uri, name, version = _resolve(ref, registry)
    files = model_files(uri)
    predictor_from_files(files)          # fail here, not in every task, if the model cannot load
    bc = mapred.broadcast(files)
    info = {"model": name, "version": version}
    if input_format in (None, "dataset"):
        try:
            ds = mapred.load_dataset(input_path)
        except InputError:
            ds = None
        if ds is not None:
            return dataset_job(bc, name), ds, {**info, "format": "dataset"}
        if input_format == "dataset":
            raise InputError(f"input {input_path} is not an array dataset")
    fs = _fs(input_path)
    if not fs.exists(input_path):
        raise InputError(f"input {input_path} does not exist")
    fmt = _record_format(input_path, input_format)
    if fmt == "text":
        if columns or keep or output_format not in (None, "text"):
            raise InputError("text input gives text lines: columns, keep and output_format are for record input")
        return text_job(bc, name), input_path, {**info, "format": "text"}
    from .records import OUTPUT_FOR
    out_fmt = output_format or OUTPUT_FOR[fmt]
    options = dict(input_options or {})
    job = record_job(bc, name, fmt, out_fmt, columns, keep, options)
    return job, input_path, {**info, "format": fmt, "output_format": out_fmt}


def batch_predict(ref: str, input_path: str, output: str, *, registry: str | None = None,
                  cluster=None, workers=None, overwrite: bool = False, **options) -> dict:
    """Run the prediction job to the end; {"model", "version", "format", "output"}.

    ``options``: ``input_format``, ``output_format``, ``columns``, ``keep`` (see ``prepare``).
    """
    job, inputs, info = prepare(ref, input_path, registry, **options)
    kw = {"cluster": cluster} if cluster is not None else {"workers": workers}
    from ..base import translate_errors
    with translate_errors():
        job.run(inputs, output=output, overwrite=overwrite, **kw)
    return {**info, "output": output}


def submit_batch_predict(client, ref: str, input_path: str, output: str, *, registry: str | None = None,
                         overwrite: bool = False, **options):
    """Submit the prediction job to a cluster without waiting: (JobHandle, info)."""
    job, inputs, info = prepare(ref, input_path, registry, **options)
    return client.submit(job, inputs, output, overwrite=overwrite), {**info, "output": output}


def read_predictions(path: str) -> list:
    """The records of a record-format prediction output in input order: dicts (pairs for msgpack/seq)."""
    out = []
    for key, value in mapred.Result(path):
        out.append(value if key is None else (key, value))
    return out


def read_text_predictions(path: str) -> list[str]:
    """The lines of a text prediction output, in input order (parts in name order)."""
    fs = _fs(path)
    lines: list[str] = []
    for part in sorted(p for p in fs.expand(path) if os.path.basename(p).startswith("part-")):
        with fs.open_read(part) as f:
            lines.extend(io.TextIOWrapper(f, encoding="utf-8").read().splitlines())
    return lines
