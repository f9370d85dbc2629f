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


def prepare(ref: str, input_path: str, registry: str | None = None):
    """(job, inputs, info) for predicting ``input_path`` with the model ``ref`` names."""
    uri, name, version = _resolve(ref, registry)
    files = model_files(uri)
    predictor_from_files(files)          # fail here, not in every task, if the model cannot load
    bc = mapred.broadcast(files)
    try:
        ds = mapred.load_dataset(input_path)
    except InputError:
        ds = None
    if ds is not None:
        return dataset_job(bc, name), ds, {"model": name, "version": version, "format": "dataset"}
    fs = _fs(input_path)
    if not fs.exists(input_path):
        raise InputError(f"input {input_path} does not exist")
    return text_job(bc, name), input_path, {"model": name, "version": version, "format": "text"}


def batch_predict(ref: str, input_path: str, output: str, *, registry: str | None = None,
                  cluster=None, workers=None, overwrite: bool = False) -> dict:
    """Run the prediction job to the end; {"model", "version", "format", "output", "rows"}."""
    job, inputs, info = prepare(ref, input_path, registry)
    kw = {"cluster": cluster} if cluster is not None else {"workers": workers}
    from ..base import translate_errors
    with translate_errors():
        job.run(inputs, output=output, overwrite=overwrite, **kw)
    return {**info, "output": output}


def submit_batch_predict(client, ref: str, input_path: str, output: str, *, registry: str | None = None,
                         overwrite: bool = False):
    """Submit the prediction job to a cluster without waiting: (JobHandle, info)."""
    job, inputs, info = prepare(ref, input_path, registry)
    return client.submit(job, inputs, output, overwrite=overwrite), {**info, "output": output}


def read_text_predictions(path: str) -> list[str]:
    """The lines of a text prediction output, in input order (parts in name order)."""
    fs = _fs(path)
    lines: list[str] = []
    for part in sorted(p for p in fs.expand(path) if os.path.basename(p).startswith("part-")):
        with fs.open_read(part) as f:
            lines.extend(io.TextIOWrapper(f, encoding="utf-8").read().splitlines())
    return lines
