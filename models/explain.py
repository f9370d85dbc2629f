"""Explanation and compression of linear models.

- ``coefficients``: features ranked by the size of their weights (the L2 norm
  across classes for multinomial models), with names.
- ``permutation_importance`` is a job: map scores its block as is and with
  each feature's column permuted (within the block, seeded by (seed, first
  row, feature, repeat)) and emits the additive score statistics — correct
  counts for classifiers, squared-error sums for regressors; reduce adds; the
  driver reports the drop in accuracy (or R²) per feature.  Permuting within
  blocks keeps the job one pass with no shuffle of the data; with blocks of a
  few thousand rows it estimates the same quantity as a global permutation.
- ``compress``: float16 or int8 (per-class symmetric scale) quantisation or
  magnitude pruning of a linear model's coefficients, reporting the
  coefficient storage size and, given a dataset, the score before and after.
"""
from __future__ import annotations

import copy

import numpy as np

from mapred.errors import ModelError

from ._common import Runner, as_data, block_start, seeded_rng, sum_job, unpack
from .base import translate_errors


def _coef_matrix(model) -> np.ndarray:
    if not hasattr(model, "coef_"):
        raise ModelError(f"{type(model).__name__} has no coefficients to explain or compress")
    coef = np.asarray(model.coef_, dtype=np.float64)
    return coef.reshape(1, -1) if coef.ndim == 1 else coef


def coefficients(model, feature_names=None, top=None) -> list:
    """[{"feature", "weight", "coef"}] sorted by |weight| descending (weight: L2 over classes)."""
    model._check_fitted()
    coef = _coef_matrix(model)
    names = [str(f) for f in feature_names] if feature_names is not None else \
        [f"x{j}" for j in range(coef.shape[1])]
    if len(names) != coef.shape[1]:
        raise ModelError(f"feature_names has {len(names)} names for {coef.shape[1]} features")
    weight = np.sqrt((coef ** 2).sum(axis=0)) if coef.shape[0] > 1 else coef[0]
    order = np.argsort(-np.abs(weight), kind="stable")[:top]
    return [{"feature": names[j], "weight": float(weight[j]), "coef": coef[:, j].tolist()} for j in order]


def permutation_importance(model, dataset, *, n_repeats=3, seed=0, feature_names=None,
                           workers=None, cluster=None) -> list:
    """[{"feature", "importance", "std"}] by one job, most important first."""
    model._check_fitted()
    data = as_data(dataset)
    d, sparse = data.n_features, data.sparse
    if sparse:
        raise ModelError("permutation importance needs dense features")
    classifier = hasattr(model, "classes_")

    def score(X, y):
        pred = model.predict(X)
        return float((pred == y).sum()) if classifier else float(((y - pred) ** 2).sum())

    def stat(block):
        X, y = unpack(block)
        start = block_start()
        out = [score(X, y)]
        for j in range(d):
            for r in range(n_repeats):
                Xp = X.copy()
                Xp[:, j] = X[seeded_rng(seed, start, j, r).permutation(len(X)), j]
                out.append(score(Xp, y))
        return np.concatenate([out, [y.sum(), y @ y if not classifier else 0.0, len(y)]])

    with translate_errors():
        v = Runner(workers, cluster).run_sum(sum_job(stat, "explain.permutation"), data.ds)
    base, perm = v[0], v[1:1 + d * n_repeats].reshape(d, n_repeats)
    sy, syy, n = v[-3:]
    if classifier:
        drops = (base - perm) / n
    else:
        drops = (perm - base) / (syy - sy * sy / n)  # the R² lost
    names = [str(f) for f in feature_names] if feature_names is not None else [f"x{j}" for j in range(d)]
    rows = [{"feature": names[j], "importance": float(drops[j].mean()), "std": float(drops[j].std())}
            for j in range(d)]
    return sorted(rows, key=lambda r: -r["importance"])


def compress(model, method="float16", *, sparsity=0.9, dataset=None, workers=None, cluster=None):
    """A compressed copy of a linear model and a report {size_before, size_after, score_before/after}.

    float16 keeps the coefficients as float16 (saved that way, predictions in
    float64); int8 and pruning keep dequantised float64 weights and report the
    size the encoded form (int8 + scales; CSR of the survivors) takes.
    """
    model._check_fitted()
    coef = _coef_matrix(model)
    before = coef.size * 8
    small = copy.deepcopy(model)
    if method == "float16":
        q = coef.astype(np.float16)
        after = q.size * 2
        new = q
    elif method == "int8":
        scale = np.abs(coef).max(axis=1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.round(coef / scale), -127, 127).astype(np.int8)
        new, after = q.astype(np.float64) * scale, q.size + scale.size * 8
    elif method == "prune":
        if not 0 <= sparsity < 1:
            raise ModelError(f"sparsity must be in [0, 1), got {sparsity!r}")
        cut = np.quantile(np.abs(coef), sparsity)
        new = np.where(np.abs(coef) > cut, coef, 0.0)
        nnz = int((new != 0).sum())
        after = nnz * (8 + 4) + (coef.shape[0] + 1) * 8
    else:
        raise ModelError(f"method must be 'float16', 'int8' or 'prune', got {method!r}")
    small.coef_ = new.reshape(np.shape(model.coef_))
    report = {"method": method, "size_before": int(before), "size_after": int(after),
              "ratio": before / max(after, 1), "nonzero": int((np.asarray(new) != 0).sum())}
    if dataset is not None:
        from .evaluate import evaluate
        key = "accuracy" if hasattr(model, "classes_") else "r2"
        report["score"] = key
        report["score_before"] = evaluate(model, dataset, workers=workers, cluster=cluster)[key]
        report["score_after"] = evaluate(small, dataset, workers=workers, cluster=cluster)[key]
    small.compression_ = report
    return small, report


def contributions(model, X) -> np.ndarray:
    """Each feature's additive part of each row's raw score: ``x_j * coef_j`` (per class for multinomial).

    Rows of the result plus ``intercept_`` sum to ``decision_function`` (logistic)
    or ``predict`` (linear): shape (n, d) for linear and binary logistic models,
    (n, classes, d) for multinomial ones.
    """
    model._check_fitted()
    coef = _coef_matrix(model)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != coef.shape[1]:
        raise ModelError(f"X has {X.shape[-1] if X.ndim else 0} features per row, "
                         f"the model was fitted on {coef.shape[1]}")
    out = X[:, None, :] * coef[None, :, :]
    return out[:, 0, :] if coef.shape[0] == 1 else out
