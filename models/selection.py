"""Model selection on the cluster: ``cross_validate`` and ``GridSearch``, scikit-learn's shapes.

The data is read once: numpy input is split into folds in the driver (it is
already in memory); an engine dataset is cached, and each fold's train and
test sets are written by map-only jobs over the cached blocks (rows go to a
fold by a hash of the row id, so folds are the same for any splits and
workers).  Every (parameter set, fold) fit is then a task of its own, run on
``n_jobs`` threads (default: up to 4 at once), so their jobs are submitted
side by side and share the executors: a real cluster's master schedules them
together (each thread holds its own connection to the master: a ZeroMQ socket
is not shared across threads), and so does the embedded ``LocalCluster``,
whose one scheduling core runs every submitted job at once.  While one fit's
driver solves its Newton step or waits for its last task, the others' tasks
use the executors.  Results do not depend on ``n_jobs``: each fit is the same
sequence of jobs whatever runs beside it (``benchmarks/selection.py``
measures the wall-time gain and checks the scores are equal).

Folds for numpy input: ``cv=int`` is scikit-learn's ``KFold(cv)`` (contiguous,
unshuffled) or ``StratifiedKFold(cv)`` for classifiers, exactly as
``sklearn.model_selection`` picks, so results can be compared fold for fold;
``cv`` may also be any iterable of (train indices, test indices).
"""
from __future__ import annotations

import itertools
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import mapred

from ._common import Data, Runner, as_data, block_start, row_hash
from .base import translate_errors
from .protocol import DataError, engine, engine_defaults


def _clone(model):
    """A fresh, unfitted model with the same parameters (scikit-learn's ``clone`` contract)."""
    return type(model)(**model.get_params(deep=False))


def _is_classifier(model) -> bool:
    try:
        from sklearn.base import is_classifier
        return bool(is_classifier(model))
    except ImportError:  # pragma: no cover
        return getattr(model, "_estimator_type", None) == "classifier"


def numpy_folds(X, y, cv, classifier: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: an iterable as given, else KFold / StratifiedKFold as sklearn picks."""
    if not isinstance(cv, (int, np.integer)):
        return [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
    if cv < 2:
        raise DataError(f"cv must be at least 2 folds, got {cv}")
    n = len(X)
    if classifier and y is not None:
        try:
            from sklearn.model_selection import StratifiedKFold
            return list(StratifiedKFold(cv).split(np.zeros(n), y))
        except ImportError:  # pragma: no cover - without scikit-learn, plain K folds
            pass
    edges = np.full(cv, n // cv)
    edges[:n % cv] += 1
    stops = np.cumsum(edges)
    out = []
    for i, stop in enumerate(stops):
        test = np.arange(stop - edges[i], stop)
        out.append((np.setdiff1d(np.arange(n), test), test))
    return out


class _Folds:
    """The folds of one data set, built once and shared by every fit."""

    def __init__(self, dataset, y, cv, classifier: bool, seed: int, runner: Runner) -> None:
        self.pairs = []  # [(train, test)]: train is what fit takes, test is (X, y) or a dataset
        if hasattr(dataset, "num_splits") or isinstance(dataset, Data):
            self._engine_folds(as_data(dataset, need_y=False), cv, seed, runner)
        else:
            X, yy = np.asarray(dataset), (None if y is None else np.asarray(y))
            for tr, te in numpy_folds(X, yy, cv, classifier):
                train = (X[tr],) if yy is None else (X[tr], yy[tr])
                test = (X[te],) if yy is None else (X[te], yy[te])
                self.pairs.append((train, test))

    def _engine_folds(self, data: Data, cv, seed: int, runner: Runner) -> None:
        if not isinstance(cv, (int, np.integer)) or cv < 2:
            raise DataError(f"for an engine dataset cv must be a number of folds >= 2, got {cv!r}")
        data = Data(data.ds.cache() if hasattr(data.ds, "cache") else data.ds, data.n_features,
                    data.sparse, data.has_y)
        for i in range(cv):
            parts = []
            for keep_fold in (False, True):
                target = tempfile.mkdtemp(prefix="mapred-cv-")
                job = mapred.Job(map_batch=_fold_rows(cv, seed, i, keep_fold), output_format="dataset",
                                 name=f"models.cv.fold{i}.{'test' if keep_fold else 'train'}")
                with translate_errors():
                    runner.run(job, data.ds, output=target)
                ds = mapred.load_dataset(target)
                ds = mapred.load_dataset(target, splits=max(1, min(data.ds.num_splits, ds.num_rows)))
                parts.append(Data(ds, data.n_features, data.sparse, data.has_y))
            self.pairs.append(((parts[0],), parts[1]))


def _fold_rows(cv: int, seed: int, fold: int, keep_fold: bool):
    """A ``map_batch`` keeping the rows in ``fold`` (test) or outside it (train), by row hash."""
    def map_batch(block):
        arrays = block if isinstance(block, tuple) else (block,)
        start = block_start()
        which = np.minimum((row_hash(np.arange(start, start + len(arrays[0])), seed) * cv).astype(int),
                           cv - 1)
        mask = (which == fold) if keep_fold else (which != fold)
        if mask.any():
            yield None, tuple(a[mask] for a in arrays)
    return map_batch


def _score(model, test, scoring) -> float:
    if isinstance(test, Data) or hasattr(test, "num_splits"):
        from .evaluate import evaluate
        result = evaluate(model, test)
        key = scoring or ("accuracy" if "accuracy" in result else "r2" if "r2" in result else "inertia")
        value = float(result[key])
        return -value if key == "inertia" else value
    if callable(scoring):
        return float(scoring(model, *test))
    if scoring is not None:
        from sklearn.metrics import get_scorer
        return float(get_scorer(scoring)(model, *test))
    return float(model.score(*test))


DEFAULT_N_JOBS = 4


def _run_all(tasks, n_jobs):
    """Run ``fn()`` for each task on ``n_jobs`` threads, each with its own engine connection."""
    n_jobs = min(len(tasks), DEFAULT_N_JOBS) if n_jobs is None else int(n_jobs)
    if n_jobs == -1:
        n_jobs = len(tasks)
    defaults = engine_defaults()
    cluster, workers = defaults["cluster"], defaults["workers"]

    def run(task):
        own = None
        target = cluster
        runner = defaults.get("runner")
        if cluster is not None and hasattr(cluster, "address") and n_jobs > 1:
            own = target = mapred.connect(cluster.address)  # one socket per thread
        try:
            with engine(cluster=target, workers=workers, runner=runner,
                        spark_master=defaults.get("spark_master"), everywhere=False):
                return task()
        finally:
            if own is not None and hasattr(own, "close"):
                own.close()

    if n_jobs <= 1:
        return [run(t) for t in tasks]
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(run, tasks))


def _fit_and_score(model, params, train, test, scoring, return_train_score):
    est = _clone(model).set_params(**params)
    started = time.perf_counter()
    est.fit(*train)
    fit_time = time.perf_counter() - started
    started = time.perf_counter()
    out = {"test_score": _score(est, test, scoring), "fit_time": fit_time,
           "score_time": time.perf_counter() - started, "estimator": est}
    if return_train_score:
        out["train_score"] = _score(est, train if len(train) > 1 else train[0], scoring)
    return out


def cross_validate(model, dataset, y=None, *, cv=5, scoring=None, n_jobs=None, seed=0,
                   return_train_score=False, return_estimator=False, workers=None, cluster=None) -> dict:
    """Fit and score ``model`` on each of ``cv`` folds; scikit-learn's ``cross_validate`` dict.

    Returns ``{"test_score", "fit_time", "score_time"}`` arrays (plus
    ``train_score`` / ``estimator`` when asked).  ``dataset`` is numpy X (with
    ``y``) or an engine dataset; ``scoring`` is None (the model's ``score``), a
    scikit-learn scorer name, or ``f(model, X, y)``.  ``n_jobs`` fits run at
    once (None: up to 4; 1: one after another; -1: all), each fold's jobs
    submitted beside the others'.
    """
    with engine(cluster=cluster, workers=workers) if (cluster or workers) else _nothing():
        runner = Runner()
        folds = _Folds(dataset, y, cv, _is_classifier(model), seed, runner)
        tasks = [lambda tr=tr, te=te: _fit_and_score(model, {}, tr, te, scoring, return_train_score)
                 for tr, te in folds.pairs]
        results = _run_all(tasks, n_jobs)
    out = {key: np.array([r[key] for r in results]) for key in ("fit_time", "score_time", "test_score")}
    if return_train_score:
        out["train_score"] = np.array([r["train_score"] for r in results])
    if return_estimator:
        out["estimator"] = [r["estimator"] for r in results]
    return out


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _grid(params) -> list[dict]:
    grids = params if isinstance(params, (list, tuple)) else [params]
    out = []
    for grid in grids:
        keys = sorted(grid)
        out.extend(dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys)))
    return out


class GridSearch:
    """Exhaustive search over parameter sets by cross-validation, as scikit-learn's ``GridSearchCV``.

    Every (parameter set, fold) fit is one task on ``n_jobs`` threads (None: up
    to 4 at once) over folds built once; their jobs run side by side.  After ``fit``: ``cv_results_`` (``params``, ``param_<name>``,
    ``split<i>_test_score``, ``mean_test_score``, ``std_test_score``,
    ``rank_test_score``, ``mean_fit_time``...), ``best_params_``,
    ``best_score_``, ``best_index_`` and, with ``refit``, ``best_estimator_``
    fitted on all the data.  Ties go to the first parameter set, as in scikit-learn.
    """

    def __init__(self, model, params, *, cv=5, scoring=None, n_jobs=None, refit=True, seed=0):
        self.model, self.params, self.cv, self.scoring = model, params, cv, scoring
        self.n_jobs, self.refit, self.seed = n_jobs, refit, seed

    def fit(self, dataset, y=None, *, workers=None, cluster=None):
        """Cross-validate every parameter set; keep the best (refit on all the data)."""
        candidates = _grid(self.params)
        if not candidates:
            raise DataError("GridSearch needs at least one parameter set")
        with engine(cluster=cluster, workers=workers) if (cluster or workers) else _nothing():
            folds = _Folds(dataset, y, self.cv, _is_classifier(self.model), self.seed, Runner())
            tasks = [lambda p=p, tr=tr, te=te: _fit_and_score(self.model, p, tr, te, self.scoring, False)
                     for p in candidates for tr, te in folds.pairs]
            results = _run_all(tasks, self.n_jobs)
            self.cv_results_ = self._results(candidates, results, len(folds.pairs))
            self.best_index_ = int(np.argmin(self.cv_results_["rank_test_score"]))
            self.best_params_ = candidates[self.best_index_]
            self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
            if self.refit:
                whole = (dataset,) if y is None else (dataset, y)
                self.best_estimator_ = _clone(self.model).set_params(**self.best_params_).fit(*whole)
        return self

    @staticmethod
    def _results(candidates, results, n_folds: int) -> dict:
        scores = np.array([r["test_score"] for r in results]).reshape(len(candidates), n_folds)
        fit_t = np.array([r["fit_time"] for r in results]).reshape(len(candidates), n_folds)
        score_t = np.array([r["score_time"] for r in results]).reshape(len(candidates), n_folds)
        out = {"params": candidates}
        for name in sorted({k for c in candidates for k in c}):
            out[f"param_{name}"] = np.ma.masked_array([c.get(name) for c in candidates],
                                                      mask=[name not in c for c in candidates],
                                                      dtype=object)
        for i in range(n_folds):
            out[f"split{i}_test_score"] = scores[:, i]
        mean = scores.mean(axis=1)
        out.update(mean_test_score=mean, std_test_score=scores.std(axis=1),
                   mean_fit_time=fit_t.mean(axis=1), std_fit_time=fit_t.std(axis=1),
                   mean_score_time=score_t.mean(axis=1), std_score_time=score_t.std(axis=1))
        # rank as scipy's "min" method: equal scores share the best rank
        order = np.argsort(-mean, kind="stable")
        ranks = np.empty(len(mean), dtype=np.int32)
        for pos, idx in enumerate(order):
            ranks[idx] = pos + 1 if pos == 0 or mean[idx] != mean[order[pos - 1]] else ranks[order[pos - 1]]
        out["rank_test_score"] = ranks
        return out

    def predict(self, X):
        """The refitted best model's predictions."""
        return self.best_estimator_.predict(X)

    def score(self, X, y=None) -> float:
        """The refitted best model's score."""
        return self.best_estimator_.score(X, y) if y is not None else self.best_estimator_.score(X)
