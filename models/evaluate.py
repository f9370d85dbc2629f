"""Evaluation as a job over a held-out dataset.

Map/reduce functions (docs/models.md): map predicts its whole block with the
model (shipped in the job's closure) and emits one float64 vector of additive
statistics; the combiner and reducer add the vectors; the driver turns sums
into metrics.

- classifiers: confusion matrix, log-loss sum, and per class two histograms
  of the predicted probability (rows of that class / of the others) over
  ``bins`` equal bins of [0, 1]; ROC AUC comes from the merged histograms
  (exact up to the bin width; ties within a bin count one half);
- regressors: Σ(y − ŷ)², Σ|y − ŷ|, Σy, Σy², n → RMSE, MAE, R²;
- k-means: inertia and points per cluster; ALS: RMSE and MAE of ratings.
"""
from __future__ import annotations

import numpy as np

from mapred.errors import ModelError

from ._common import Data, Runner, as_data, block_start, sum_job, unpack
from .base import translate_errors


def _kind(model) -> str:
    from .als import ALS
    from .kmeans import KMeans
    if isinstance(model, ALS):
        return "ratings"
    if isinstance(model, KMeans):
        return "clusters"
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        return "classifier"
    if hasattr(model, "predict"):
        return "regressor"
    raise ModelError(f"cannot evaluate a {type(model).__name__}")


def evaluate(model, dataset, *, bins: int = 2048, workers=None, cluster=None) -> dict:
    """Metrics of a fitted model on a dataset, computed by one map-reduce job."""
    model._check_fitted()
    kind = _kind(model)
    runner = Runner(workers, cluster)
    if kind == "ratings":
        return _ratings(model, dataset, runner)
    data = as_data(dataset, need_y=kind != "clusters")
    width = getattr(model, "n_features_in_", data.n_features)
    if data.n_features != width:
        raise ModelError(f"dataset has {data.n_features} features per row, the model was fitted on {width}")
    stat = {"classifier": _classifier_stat, "regressor": _regressor_stat,
            "clusters": _cluster_stat}[kind](model, data, bins)
    with translate_errors():
        v = runner.run_sum(sum_job(stat, f"evaluate.{kind}"), data.ds)
    if v is None:
        raise ModelError("the evaluation dataset is empty (0 rows)")
    return {"classifier": _classifier_metrics, "regressor": _regressor_metrics,
            "clusters": _cluster_metrics}[kind](model, v, bins)


# ---------------------------------------------------------------- classifiers


def _classifier_stat(model, data: Data, bins: int):
    classes, C, sparse, width = model.classes_, len(model.classes_), data.sparse, data.n_features

    def stat(block):
        X, y = unpack(block, sparse, width)
        yi = np.searchsorted(classes, y)
        yi_c = np.clip(yi, 0, C - 1)
        outside = classes[yi_c] != y
        if outside.any():
            first = int(np.argmax(outside))
            raise ModelError(f"row {block_start() + first}: label {np.asarray(y)[first].item()!r} "
                             f"is not one of the model's classes {classes.tolist()}")
        P = model.predict_proba(X)
        pred = np.argmax(P, axis=1)
        conf = np.zeros((C, C))
        np.add.at(conf, (yi, pred), 1.0)
        logloss = -np.log(np.clip(P[np.arange(len(yi)), yi], 1e-15, 1.0)).sum()
        b = np.minimum((P * bins).astype(np.int64), bins - 1)
        hist = np.zeros((C, 2, bins))
        for c in range(C):
            is_c = yi == c
            hist[c, 0] = np.bincount(b[is_c, c], minlength=bins)
            hist[c, 1] = np.bincount(b[~is_c, c], minlength=bins)
        return np.concatenate([conf.ravel(), [logloss, len(yi)], hist.ravel()])

    return stat


def auc_from_histograms(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC from score histograms of positives and negatives (ties in a bin count 1/2)."""
    P, N = pos.sum(), neg.sum()
    if P == 0 or N == 0:
        return float("nan")
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    return float((pos * (below + 0.5 * neg)).sum() / (P * N))


def _classifier_metrics(model, v: np.ndarray, bins: int) -> dict:
    C = len(model.classes_)
    conf = v[:C * C].reshape(C, C)
    logloss, n = v[C * C], v[C * C + 1]
    hist = v[C * C + 2:].reshape(C, 2, bins)
    tp = np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(conf.sum(axis=0) > 0, tp / conf.sum(axis=0), 0.0)
        recall = np.where(conf.sum(axis=1) > 0, tp / conf.sum(axis=1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    out = {"n": int(n), "accuracy": float(tp.sum() / n), "log_loss": float(logloss / n),
           "confusion_matrix": conf.astype(np.int64).tolist(), "classes": model.classes_.tolist()}
    if C == 2:  # binary: the second class is the positive one, as scikit-learn's pos_label=1
        out.update(precision=float(precision[1]), recall=float(recall[1]), f1=float(f1[1]),
                   auc=auc_from_histograms(hist[1, 0], hist[1, 1]))
    else:
        aucs = [auc_from_histograms(hist[c, 0], hist[c, 1]) for c in range(C)]
        out.update(precision=float(precision.mean()), recall=float(recall.mean()), f1=float(f1.mean()),
                   auc=float(np.nanmean(aucs)))
    return out


# ---------------------------------------------------------------- regressors and clusters


def _regressor_stat(model, data: Data, bins: int):
    sparse, width = data.sparse, data.n_features

    def stat(block):
        X, y = unpack(block, sparse, width)
        err = y - model.predict(X)
        return [err @ err, np.abs(err).sum(), y.sum(), y @ y, len(y)]

    return stat


def _regressor_metrics(model, v: np.ndarray, bins: int) -> dict:
    sse, sae, sy, syy, n = v
    sst = syy - sy * sy / n
    return {"n": int(n), "rmse": float(np.sqrt(sse / n)), "mae": float(sae / n), "mse": float(sse / n),
            "r2": float(1.0 - sse / sst) if sst > 0 else float("nan")}


def _cluster_stat(model, data: Data, bins: int):
    k = len(model.cluster_centers_)

    def stat(block):
        X, _ = unpack(block)
        D = model.transform(X) ** 2
        labels = np.argmin(D, axis=1)
        return np.concatenate([[D[np.arange(len(X)), labels].sum(), len(X)],
                               np.bincount(labels, minlength=k)])

    return stat


def _cluster_metrics(model, v: np.ndarray, bins: int) -> dict:
    return {"n": int(v[1]), "inertia": float(v[0]), "mean_sq_distance": float(v[0] / v[1]),
            "cluster_sizes": v[2:].astype(np.int64).tolist()}


def _ratings(model, ratings, runner: Runner) -> dict:
    from .als import triples
    ds = model._dataset(ratings)

    def stat(block):
        u, i, r = triples(block)
        err = r - model.predict(u, i)
        return [err @ err, np.abs(err).sum(), len(r)]

    v = runner.run_sum(sum_job(stat, "evaluate.ratings"), ds)
    if v is None:
        raise ModelError("the evaluation dataset is empty (0 rows)")
    return {"n": int(v[2]), "rmse": float(np.sqrt(v[0] / v[2])), "mae": float(v[1] / v[2])}
