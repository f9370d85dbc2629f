"""What every model shares: engine options, batch prediction as a job, persistence, errors out of tasks.

``predict_job`` is a map-only job: each split's task predicts its whole block
with numpy and emits ``(first_row_id, predictions)``, so the output can be put
back in row order by sorting on the key.  A ``ModelError`` raised inside a task
comes back to the driver as the engine's ``JobFailed``; ``translate_errors``
turns it back into a ``ModelError`` with the task's message, so a bad row met
in a prediction job reads the same as one met locally.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import numpy as np

import mapred
from mapred.errors import MapredError, ModelError

from ._common import Data, Runner, as_data, block_start, engine_options, unpack
from .persist import Persistable
from .protocol import BaseEstimator, CheckedParams, DataError, NotFittedError

_MODEL_ERROR = re.compile(r"(Model|Data)Error:?\s*([^\n]+)")


def _error_text(exc: BaseException) -> str:
    parts = [str(exc), str(getattr(exc, "traceback_text", "")), str(getattr(exc, "cause", ""))]
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        parts.append(_error_text(cause))
    return "\n".join(parts)


@contextmanager
def translate_errors():
    """Re-raise a ``ModelError`` that a task raised as a ``ModelError`` in the driver."""
    try:
        yield
    except ModelError:
        raise
    except MapredError as exc:
        match = _MODEL_ERROR.search(_error_text(exc))
        if match:
            kind = DataError if match.group(1) == "Data" else ModelError
            raise kind(match.group(2).strip().strip("'\"")) from exc
        raise


class Estimator(CheckedParams, Persistable, BaseEstimator):
    """Base of the models: the scikit-learn protocol, engine options, prediction as a job.

    ``fit(..., workers=, cluster=)`` names the engine; without them a fit uses
    ``models.engine(...)``'s (how scikit-learn's tools, which call ``fit(X, y)``,
    reach a cluster), else the embedded default cluster.
    """

    fitted_ = False
    history_: list

    def _runner(self, workers=None, cluster=None) -> Runner:
        self.history_ = []
        runner = Runner(workers=workers, cluster=cluster, history=self.history_)
        return runner

    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit first")

    def __sklearn_is_fitted__(self) -> bool:
        return bool(self.fitted_)

    def _width(self, X, what: str = "X"):
        """Prediction input checked against the fitted width, the model named in the message."""
        from ._common import check_width
        self._check_fitted()
        return check_width(X, self.n_features_in_, what, type(self).__name__)

    def _predict_block(self, X):
        """Predictions of one block (numpy in, numpy out); models override when predict differs."""
        return self.predict(X)

    def predict_job(self, dataset, output=None, *, workers=None, cluster=None):
        """Batch prediction as a map-only job; returns the engine ``Result`` of (row id, predictions).

        ``Result`` pairs sorted by key and concatenated give the predictions in row order
        (``models.collect_predictions(result)`` does that).
        """
        self._check_fitted()
        data = as_data(dataset, need_y=False) if not isinstance(dataset, Data) else dataset
        sparse, width = data.sparse, data.n_features
        predict = self._predict_block

        def map_batch(block):
            X, _ = unpack(block, sparse, width)
            start = block_start()
            try:
                out = predict(X)
            except ModelError as exc:  # name the global row, not the row within the block
                raise type(exc)(_shift_row(str(exc), start)) from None
            yield start, np.asarray(out)

        job = mapred.Job(map_batch=map_batch, output_format="msgpack",
                         name=f"{type(self).__name__}.predict")
        kw = engine_options(workers, cluster)
        with translate_errors():
            return job.run(data.ds, output=output, overwrite=output is not None, **kw)


def _shift_row(message: str, start: int) -> str:
    m = re.search(r"row (\d+)", message)
    if not m:
        return message
    return message[:m.start(1)] + str(int(m.group(1)) + start) + message[m.end(1):]


def collect_predictions(result) -> np.ndarray:
    """A ``predict_job`` result as one array in row order."""
    pairs = sorted(result, key=lambda kv: kv[0])
    if not pairs:
        return np.empty(0)
    return np.concatenate([np.asarray(v) for _, v in pairs])
