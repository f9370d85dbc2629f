"""Alternating least squares for recommendation from (user, item, rating) records.

Map/reduce functions (docs/models.md), for the user half of an iteration (the
item half swaps the roles):

- map: with the item factors V broadcast, sum the block's ratings per user
  (a sparse indicator matrix times the outer products) into rows
  ``[Σ v vᵀ, Σ r v, count]`` and emit them keyed by user bucket
  (``user % buckets``): one record per bucket per block, because the engine
  pays per record and a record per user would cost more than the arithmetic;
- combine / reduce: the shuffle joins every block's partial sums of a bucket;
  rows of the same user are added, and the reducer solves all of the bucket's
  regularised least squares ``(Σ v vᵀ + λ n_u I) x = Σ r v`` (weighted-λ, as
  Spark's ALS) in one batched ``np.linalg.solve`` and emits ``(bucket, (users, X))``.

RMSE per iteration is one more summing job.  Ratings come as a dataset of
three row-aligned arrays (users, items, ratings) or one (n, 3) array.
"""
from __future__ import annotations

import time

import numpy as np

import mapred
from mapred.errors import ModelError

from ._common import RECORDS, block_start, engine_options, sum_job
from .base import Estimator
from .persist import register

CHUNK = 8192  # ratings per outer-product chunk: bounds task memory at CHUNK * rank² floats


def triples(block):
    """A ratings block as (users, items, ratings) arrays."""
    if isinstance(block, tuple) and len(block) >= 3:
        u, i, r = block[:3]
    else:
        arr = block[0] if isinstance(block, tuple) else block
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise ModelError(f"ratings need (user, item, rating) columns, got a block of shape {arr.shape}")
        u, i, r = arr[:, 0], arr[:, 1], arr[:, 2]
    return u.astype(np.int64), i.astype(np.int64), r.astype(np.float64)


def normal_sums(keys: np.ndarray, other: np.ndarray, ratings: np.ndarray, F: np.ndarray):
    """Per distinct key: Σ f fᵀ (k x k), Σ r f and the count, over the rows of this block.

    The per-key sums are one sparse (keys x rows) indicator matrix times the
    rows' outer products, chunked so a task holds at most CHUNK * k² floats.
    """
    import scipy.sparse as sp
    uniq, group, counts = np.unique(keys, return_inverse=True, return_counts=True)
    k = F.shape[1]
    A = np.zeros((len(uniq), k * k))
    b = np.zeros((len(uniq), k))
    for lo in range(0, len(keys), CHUNK):
        f = F[other[lo:lo + CHUNK]]
        g = group[lo:lo + CHUNK]
        S = sp.csr_matrix((np.ones(len(g)), (g, np.arange(len(g)))), shape=(len(uniq), len(g)))
        A += S @ (f[:, :, None] * f[:, None, :]).reshape(len(g), k * k)
        b += S @ (ratings[lo:lo + CHUNK, None] * f)
    return uniq, A.reshape(-1, k, k), b, counts


def merge_rows(values) -> tuple[np.ndarray, np.ndarray]:
    """Partial sums of (ids, rows) from several blocks, added per id (ids sorted)."""
    import scipy.sparse as sp
    parts = list(values)
    ids = np.concatenate([np.asarray(p[0]) for p in parts])
    rows = np.vstack([np.asarray(p[1]) for p in parts])
    uniq, group = np.unique(ids, return_inverse=True)
    S = sp.csr_matrix((np.ones(len(ids)), (group, np.arange(len(ids)))), shape=(len(uniq), len(ids)))
    return uniq, np.asarray(S @ rows)


@register
class ALS(Estimator):
    """Matrix factorisation ``rating ≈ U[user] · V[item]`` by alternating least-squares jobs."""

    _param_names = ("rank", "reg", "iterations", "seed", "num_reducers")
    _array_names = ("user_factors_", "item_factors_")
    _attr_names = ("rmse_",)

    def __init__(self, rank=10, reg=0.05, iterations=10, seed=0, num_reducers=2):
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ModelError(f"rank must be at least 1, got {rank!r}")
        if reg < 0:
            raise ModelError(f"reg must be non-negative, got {reg!r}")
        self.rank, self.reg, self.iterations = rank, reg, iterations  # as given (scikit-learn's clone)
        self.seed, self.num_reducers = seed, num_reducers

    def fit(self, ratings, *, validation=None, workers=None, cluster=None):
        """Factorise the ratings; ``validation`` ratings add a held-out RMSE to each iteration."""
        ds = self._dataset(ratings).cache()  # read once by the scan, reused by every half-iteration
        runner = self._runner(workers, cluster)
        n_users, n_items = self._scan(ds, runner)
        rng = np.random.default_rng(self.seed)
        U = np.zeros((n_users, self.rank))
        V = np.abs(rng.normal(size=(n_items, self.rank))) / np.sqrt(self.rank)
        for step in range(self.iterations):
            started = time.perf_counter()
            U = self._half(ds, V, n_users, by_user=True, runner=runner, step=step)
            V = self._half(ds, U, n_items, by_user=False, runner=runner, step=step)
            entry = {"rmse": self._rmse(ds, U, V, runner)}
            if validation is not None:
                entry["val_rmse"] = self._rmse(self._dataset(validation), U, V, runner)
            runner.record(step, started, loss=entry["rmse"], **entry)
        self.user_factors_, self.item_factors_ = U, V
        self.rmse_ = self.history_[-1]["rmse"] if self.history_ else float("nan")
        self.fitted_ = True
        return self

    @staticmethod
    def _dataset(ratings):
        if hasattr(ratings, "num_splits"):
            return ratings
        arr = np.asarray(ratings)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ModelError(f"ratings must be an (n, 3) array of user, item, rating; got {arr.shape}")
        return mapred.from_numpy(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64),
                                 arr[:, 2].astype(np.float64), splits=4)

    def _scan(self, ds, runner) -> tuple[int, int]:
        """Check ratings (finite, ids non-negative) and size the factor matrices."""
        def stat(block):
            u, i, r = triples(block)
            bad = ~np.isfinite(r) | (u < 0) | (i < 0)
            first_bad = block_start() + int(np.argmax(bad)) if bad.any() else -1
            return [len(r), 1.0 if bad.any() else 0.0, first_bad if bad.any() else 0,
                    u.max(initial=-1), i.max(initial=-1)]

        def map_batch(block):  # maxima do not add: a map-only job keeps per-split facts apart
            yield block_start(), np.asarray(stat(block), dtype=np.float64)

        job = mapred.Job(map_batch=map_batch, output_format="msgpack", name="als.scan")
        pairs, _ = runner.run(job, ds)
        if not pairs:
            raise ModelError("the ratings dataset is empty (0 rows)")
        facts = np.array([v for _, v in sorted(pairs, key=lambda kv: kv[0])])
        if facts[:, 0].sum() == 0:
            raise ModelError("the ratings dataset is empty (0 rows)")
        bad = facts[facts[:, 1] > 0]
        if len(bad):
            raise ModelError(f"row {int(bad[0, 2])}: rating is NaN/infinite or an id is negative")
        return int(facts[:, 3].max()) + 1, int(facts[:, 4].max()) + 1

    def _half(self, ds, F, n_out: int, *, by_user: bool, runner, step: int) -> np.ndarray:
        """Solve one side's factors from the other side's (broadcast) factors."""
        bc = mapred.broadcast(F)
        k, reg, buckets = self.rank, self.reg, max(1, self.num_reducers) * 4

        def map_batch(block):
            u, i, r = triples(block)
            keys, other = (u, i) if by_user else (i, u)
            mapred.counter(*RECORDS, len(r))
            uniq, A, b, counts = normal_sums(keys, other, r, bc.value)
            rows = np.hstack([A.reshape(len(uniq), -1), b, counts[:, None].astype(np.float64)])
            for bucket in np.unique(uniq % buckets).tolist():
                mine = uniq % buckets == bucket
                yield bucket, (uniq[mine], rows[mine])

        def combine(bucket, values):
            yield bucket, merge_rows(values)

        def solve(bucket, values):
            ids, rows = merge_rows(values)
            A = rows[:, :k * k].reshape(-1, k, k) + reg * rows[:, -1, None, None] * np.eye(k)
            yield bucket, (ids, np.linalg.solve(A, rows[:, k * k:k * k + k, None])[:, :, 0])

        job = mapred.Job(map_batch=map_batch, combiner=combine, reducer=solve,
                         num_reducers=self.num_reducers, output_format="msgpack",
                         name=f"als.{'users' if by_user else 'items'}.{step}")
        pairs, counters = runner.run(job, ds)
        runner.last_records = int(counters.get(RECORDS[0], {}).get(RECORDS[1], 0))
        out = np.zeros((n_out, k))
        for _, (ids, X) in pairs:
            out[ids] = X
        return out

    def _rmse(self, ds, U, V, runner) -> float:
        bc = mapred.broadcast((U, V))

        def stat(block):
            u, i, r = triples(block)
            Uf, Vf = bc.value
            known = (u < len(Uf)) & (i < len(Vf))
            err = r[known] - (Uf[u[known]] * Vf[i[known]]).sum(axis=1)
            return [err @ err, known.sum()]

        v = runner.run_sum(sum_job(stat, "als.rmse"), ds)
        return float(np.sqrt(v[0] / max(v[1], 1)))

    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings for pairs of ids (unknown ids predict 0)."""
        self._check_fitted()
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        U, V = self.user_factors_, self.item_factors_
        ok = (users >= 0) & (users < len(U)) & (items >= 0) & (items < len(V))
        out = np.zeros(len(users))
        out[ok] = (U[users[ok]] * V[items[ok]]).sum(axis=1)
        return out

    def predict_job(self, ratings, output=None, *, workers=None, cluster=None):
        """Batch prediction of (user, item[, rating]) records as a map-only job: (row id, predictions)."""
        self._check_fitted()
        ds, predict = self._dataset(ratings), self.predict

        def map_batch(block):
            u, i, _ = triples(block)
            yield block_start(), predict(u, i)

        job = mapred.Job(map_batch=map_batch, output_format="msgpack", name="als.predict")
        return job.run(ds, output=output, overwrite=output is not None, **engine_options(workers, cluster))

    def recommend(self, user: int, n: int = 10, exclude=()) -> list:
        """Top-``n`` (item, score) for a user, best first, skipping ``exclude`` (e.g. items seen)."""
        self._check_fitted()
        if not 0 <= int(user) < len(self.user_factors_):
            raise ModelError(f"user {user} is not in the model ({len(self.user_factors_)} users)")
        scores = self.item_factors_ @ self.user_factors_[int(user)]
        scores[np.asarray(list(exclude), dtype=np.int64)] = -np.inf
        top = np.argsort(-scores, kind="stable")[:n]
        return [(int(i), float(scores[i])) for i in top if np.isfinite(scores[i])]
