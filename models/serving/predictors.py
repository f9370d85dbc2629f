"""One predictor per model class: what tensors it takes and gives, and the numpy call between.

Every predictor takes one input tensor whose first axis is the rows, so a
micro-batch is a concatenation along that axis and its outputs split back by
row counts.  ``check`` validates a decoded tensor against the model (name,
datatype, shape, finite values) with a message that names what was expected.

| model | input | outputs |
|---|---|---|
| LogisticRegression, GaussianNB, MultinomialNB | ``input`` FP64 [-1, d] | ``label`` [-1], ``probabilities`` FP64 [-1, classes] |
| LinearRegression | ``input`` FP64 [-1, d] | ``prediction`` FP64 [-1] |
| KMeans | ``input`` FP64 [-1, d] | ``cluster`` INT64 [-1], ``distance`` FP64 [-1] |
| ALS | ``user_id`` INT64 [-1] (parameter ``n``, default 10) | ``items`` INT64 [-1, n], ``scores`` FP64 [-1, n] |
| Pipeline (tf-idf, then a classifier) | ``text`` BYTES [-1] | as its last step |

Linear models also give ``contributions`` (each feature's part of the score,
``models.contributions``) when a request asks to explain; a tf-idf + linear
pipeline gives each document's ``tokens`` with their ``contributions``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InferError
from .tensors import Tensor, datatype_of

FLOATS = ("FP64", "FP32", "FP16")
INTS = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple

    def to_dict(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def describe(self) -> str:
        return f"{self.name!r} ({self.datatype} {list(self.shape)})"


class Predictor:
    """Base: one input tensor of rows; ``run(X, params) -> {output name: array}``."""

    accepts: tuple = FLOATS
    explainable = False

    def __init__(self, model) -> None:
        self.model = model
        self.input = self._input_spec()
        self.outputs = self._output_specs()

    def _input_spec(self) -> TensorSpec:
        return TensorSpec("input", "FP64", (-1, int(self.model.n_features_in_)))

    def _output_specs(self) -> list[TensorSpec]:
        raise NotImplementedError

    def output_names(self, params: dict) -> list[str]:
        names = [o.name for o in self.outputs]
        return names + (["contributions"] if self.explainable and params.get("explain") else [])

    def check(self, tensors: list[Tensor]) -> np.ndarray:
        """The one input, validated; ``InferError(400)`` naming the expectation otherwise."""
        want = self.input
        if len(tensors) != 1 or tensors[0].name != want.name:
            got = ", ".join(repr(t.name) for t in tensors)
            raise InferError(400, f"the model takes one input {want.describe()}; got {got}")
        t = tensors[0]
        if t.datatype not in self.accepts:
            raise InferError(400, f"input {t.name!r} has datatype {t.datatype}; expected "
                                  f"{' or '.join(self.accepts)}")
        shape = want.shape
        if len(t.shape) != len(shape) or any(w != -1 and w != g for w, g in zip(shape, t.shape)):
            raise InferError(400, f"input {t.name!r} has shape {t.shape}; expected {list(shape)}")
        if t.shape[0] == 0:
            raise InferError(400, f"input {t.name!r} has no rows")
        return self._convert(t)

    def _convert(self, t: Tensor) -> np.ndarray:
        X = t.array.astype(np.float64, copy=False)
        bad = ~np.isfinite(X)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise InferError(400, f"input {t.name!r} row {row} holds NaN or infinity; the model needs "
                                  "finite values")
        return X

    def batch_key(self, params: dict):
        """Requests with equal keys may share a micro-batch."""
        return bool(params.get("explain"))

    def run(self, X, params: dict) -> dict:
        raise NotImplementedError

    def metadata(self) -> dict:
        outs = [o.to_dict() for o in self.outputs]
        if self.explainable:
            outs.append({"name": "contributions", "datatype": "FP64",
                         "shape": [-1] + list(self._contribution_shape())})
        return {"inputs": [self.input.to_dict()], "outputs": outs}

    def _contribution_shape(self) -> tuple:
        return ()


def _label_type(classes) -> str:
    return datatype_of(np.asarray(classes))


class ClassifierPredictor(Predictor):
    def _output_specs(self):
        classes = np.asarray(self.model.classes_)
        return [TensorSpec("label", _label_type(classes), (-1,)),
                TensorSpec("probabilities", "FP64", (-1, len(classes)))]

    def run(self, X, params):
        proba = np.asarray(self.model.predict_proba(X), dtype=np.float64)
        # the label as the model decides it (an argmax of underflowed probabilities could differ)
        out = {"label": np.asarray(self.model.predict(X)), "probabilities": proba}
        if self.explainable and params.get("explain"):
            from models.explain import contributions
            out["contributions"] = contributions(self.model, X)
        return out


class LogisticPredictor(ClassifierPredictor):
    explainable = True

    def run(self, X, params):
        # one decision_function, then the label exactly as model.predict decides it (Z > 0, or argmax)
        from models.linear import _sigmoid
        Z = self.model.decision_function(X)
        classes = np.asarray(self.model.classes_)
        if Z.ndim == 1:
            p = _sigmoid(Z)
            out = {"label": classes[(Z > 0).astype(int)], "probabilities": np.column_stack([1 - p, p])}
        else:
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            out = {"label": classes[np.argmax(Z, axis=1)], "probabilities": E / E.sum(axis=1, keepdims=True)}
        if params.get("explain"):
            from models.explain import contributions
            out["contributions"] = contributions(self.model, X)
        return out

    def _contribution_shape(self):
        coef = np.asarray(self.model.coef_)
        d = coef.shape[-1]
        return (d,) if coef.ndim == 1 or coef.shape[0] == 1 else (coef.shape[0], d)


class RegressorPredictor(Predictor):
    explainable = True

    def _output_specs(self):
        return [TensorSpec("prediction", "FP64", (-1,))]

    def run(self, X, params):
        out = {"prediction": np.asarray(self.model.predict(X), dtype=np.float64)}
        if params.get("explain"):
            from models.explain import contributions
            out["contributions"] = contributions(self.model, X)
        return out

    def _contribution_shape(self):
        return (int(self.model.n_features_in_),)


class KMeansPredictor(Predictor):
    def _output_specs(self):
        return [TensorSpec("cluster", "INT64", (-1,)), TensorSpec("distance", "FP64", (-1,))]

    def run(self, X, params):
        D = self.model.transform(X)
        idx = np.argmin(D, axis=1)
        return {"cluster": idx.astype(np.int64), "distance": D[np.arange(len(D)), idx]}


class ALSPredictor(Predictor):
    accepts = INTS

    def _input_spec(self):
        return TensorSpec("user_id", "INT64", (-1,))

    def _output_specs(self):
        return [TensorSpec("items", "INT64", (-1, -1)), TensorSpec("scores", "FP64", (-1, -1))]

    def _convert(self, t: Tensor) -> np.ndarray:
        users = t.array.astype(np.int64)
        n_users = len(self.model.user_factors_)
        bad = (users < 0) | (users >= n_users)
        if bad.any():
            raise InferError(400, f"input {t.name!r}: user {int(users[bad][0])} is not in the model "
                                  f"(user ids 0..{n_users - 1})")
        return users

    def _n(self, params) -> int:
        n = params.get("n", 10)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= len(self.model.item_factors_):
            raise InferError(400, f"parameter 'n' must be an integer in 1..{len(self.model.item_factors_)}, "
                                  f"got {n!r}")
        return n

    def batch_key(self, params):
        return self._n(params)

    def run(self, users, params):
        n = self._n(params)
        scores = self.model.user_factors_[users] @ self.model.item_factors_.T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :n]
        return {"items": top.astype(np.int64), "scores": np.take_along_axis(scores, top, axis=1)}


class TextPredictor(Predictor):
    """Raw documents through the saved vectoriser, then the pipeline's last step.

    Explaining a tf-idf + linear pipeline gives each document's terms with
    their parts of the raw score: ``tokens`` BYTES [-1, k] and
    ``contributions`` FP64 [-1, k], term j's part being its tf-idf weight
    times the model's coefficient for it (for a multinomial model, the
    coefficient of the class the row is predicted as), largest first, padded
    with ``""`` and 0 to the longest row of the request.  A row's parts plus
    the intercept sum to its decision function (or prediction); parameter
    ``top`` keeps only the k largest.
    """

    accepts = ("BYTES",)

    def __init__(self, model) -> None:
        self.inner = predictor_for(model.final, features_only=True)
        steps = model.steps[:-1]
        # per-term parts need the feature columns to be terms: one vectoriser, then the linear model
        self.explainable = (self.inner.explainable and len(steps) == 1
                            and type(steps[0]).__name__ == "TfidfVectorizer")
        super().__init__(model)

    def _input_spec(self):
        return TensorSpec("text", "BYTES", (-1,))

    def _output_specs(self):
        return self.inner.outputs

    def output_names(self, params: dict) -> list[str]:
        names = [o.name for o in self.outputs]
        return names + (["tokens", "contributions"] if self.explainable and params.get("explain") else [])

    def metadata(self) -> dict:
        outs = [o.to_dict() for o in self.outputs]
        if self.explainable:
            outs += [{"name": "tokens", "datatype": "BYTES", "shape": [-1, -1]},
                     {"name": "contributions", "datatype": "FP64", "shape": [-1, -1]}]
        return {"inputs": [self.input.to_dict()], "outputs": outs}

    def _convert(self, t: Tensor) -> np.ndarray:
        return t.array.reshape(-1)

    def batch_key(self, params: dict):
        return (bool(params.get("explain")), params.get("top"))

    def run(self, docs, params):
        X = self.model.transform([str(d) for d in docs])
        out = self.inner.run(X, {**params, "explain": False})
        if self.explainable and params.get("explain"):
            out["tokens"], out["contributions"] = self._token_parts(X, out, params.get("top"))
        return out

    def _token_parts(self, X, out: dict, top) -> tuple[np.ndarray, np.ndarray]:
        if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 1):
            raise InferError(400, f"parameter 'top' must be a positive integer, got {top!r}")
        coef = np.asarray(self.model.final.coef_, dtype=np.float64)
        if coef.ndim == 2 and coef.shape[0] > 1:   # multinomial: the predicted class's row
            classes = list(np.asarray(self.model.final.classes_).tolist())
            rows = coef[[classes.index(label) for label in np.asarray(out["label"]).tolist()]]
        else:
            rows = np.broadcast_to(coef.reshape(-1), (X.shape[0], coef.size))
        terms = np.asarray(self.model.steps[0].terms_)
        X = X.tocsr()
        per_row = []
        for i in range(X.shape[0]):
            idx = X.indices[X.indptr[i]:X.indptr[i + 1]]
            parts = X.data[X.indptr[i]:X.indptr[i + 1]] * rows[i, idx]
            order = np.argsort(-np.abs(parts), kind="stable")[:top]
            per_row.append((terms[idx[order]].tolist(), parts[order]))
        k = max((len(p) for _, p in per_row), default=0)
        tokens = np.full((len(per_row), k), "", dtype=object)
        values = np.zeros((len(per_row), k))
        for i, (names, parts) in enumerate(per_row):
            tokens[i, :len(names)] = names
            values[i, :len(parts)] = parts
        return tokens, values


def predictor_for(model, features_only: bool = False) -> Predictor:
    """The predictor of a loaded model, by class; ``InferError(400)`` for one that cannot be served."""
    kind = type(model).__name__
    table = {"LogisticRegression": LogisticPredictor, "GaussianNB": ClassifierPredictor,
             "MultinomialNB": ClassifierPredictor, "LinearRegression": RegressorPredictor,
             "KMeans": KMeansPredictor, "ALS": ALSPredictor}
    if kind == "Pipeline" and not features_only:
        return TextPredictor(model)
    if kind not in table:
        raise InferError(400, f"a {kind} cannot be served (servable: {', '.join(sorted(table))}, Pipeline)")
    if features_only and kind == "MultinomialNB":
        return _SparseClassifier(model)
    return table[kind](model)


class _SparseClassifier(ClassifierPredictor):
    """The classifier behind a text pipeline (it sees the vectoriser's CSR rows)."""

    def _input_spec(self):
        return TensorSpec("input", "FP64", (-1, int(self.model.n_features_in_)))
