"""k-means: k-means++ on a sample or k-means|| initialisation, then Lloyd iterations as jobs.

Map/reduce functions (docs/models.md):

- Lloyd pass: map assigns each point of a (cached) block to its nearest
  broadcast centroid and emits key 0 = ``[per-centroid sums, counts, inertia]``
  and key 1 = the block's k farthest points; reduce adds key 0 and keeps the
  global k farthest of key 1 (to re-seed empty clusters).
- sample: map keeps rows whose hash of (seed, row id) falls under the sample
  rate — the same sample for any number of splits.
- k-means|| round: map computes each point's squared distance to the current
  candidates, emits the cost sum, and (second job) the rows sampled with
  probability ``l * d² / cost``; a last job counts the points nearest to each
  candidate, and weighted k-means++ on the candidates picks k.
"""
from __future__ import annotations

import time

import numpy as np

import mapred
from mapred.errors import ModelError

from ._common import (RECORDS, Data, as_data, block_start, cached, check_width, row_hash, sum_job,
                      unpack)
from .base import Estimator
from .persist import register
from .preprocess import moments
from .scan import scan


def sq_distances(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Squared distances of every row of X to every centre (n x k), never negative."""
    D = (X * X).sum(axis=1)[:, None] - 2.0 * (X @ C.T) + (C * C).sum(axis=1)[None, :]
    return np.maximum(D, 0.0)


def lloyd_stats(X: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One block's per-centre sums (k x d), counts, distances to the nearest centre and labels.

    The argmin needs only ``-2 x·c + |c|²`` (one BLAS product, updated in
    place); ``|x|²`` (an einsum, no n x d temporary) is added back for the
    nearest centre only; the per-centre sums are a sparse indicator times X.
    """
    import scipy.sparse as sp
    n, k = X.shape[0], C.shape[0]
    D = X @ C.T
    D *= -2.0
    D += (C * C).sum(axis=1)
    labels = np.argmin(D, axis=1)
    near = np.maximum(D[np.arange(n), labels] + np.einsum("ij,ij->i", X, X), 0.0)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    indicator = sp.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
    return np.asarray(indicator @ X, dtype=np.float64), counts, near, labels


def farthest(near: np.ndarray, top: int) -> np.ndarray:
    """Indices of the ``top`` largest distances, largest first (a partition, not a full sort)."""
    if len(near) > top:
        part = np.argpartition(-near, top - 1)[:top]
    else:
        part = np.arange(len(near))
    return part[np.argsort(-near[part], kind="stable")]


def kmeans_pp(X: np.ndarray, k: int, rng: np.random.Generator, weights=None) -> np.ndarray:
    """(Weighted) k-means++ seeding on an in-memory sample: D²-weighted draws."""
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
    centers = [X[rng.choice(len(X), p=w / w.sum())]]
    d2 = sq_distances(X, centers[0][None, :])[:, 0]
    for _ in range(1, k):
        p = w * d2
        total = p.sum()
        idx = rng.choice(len(X), p=p / total) if total > 0 else int(rng.integers(len(X)))
        centers.append(X[idx])
        d2 = np.minimum(d2, sq_distances(X, X[idx][None, :])[:, 0])
    return np.array(centers, dtype=np.float64)


def _lloyd_reduce(key, values, top: int):
    """Key 0: add the sums vectors.  Key 1: keep the ``top`` farthest points seen."""
    if key == 0:
        total = None
        for v in values:
            total = np.array(v, dtype=np.float64) if total is None else total + v
        yield key, total
        return
    best_d, best_x = None, None
    for d, x in values:
        best_d = d if best_d is None else np.concatenate([best_d, d])
        best_x = x if best_x is None else np.vstack([best_x, x])
    keep = np.argsort(-best_d, kind="stable")[:top]
    yield key, (best_d[keep], best_x[keep])


@register
class KMeans(Estimator):
    """k-means with k-means++ (on a sample) or k-means|| seeding and Lloyd iterations as jobs."""

    _param_names = ("n_clusters", "init", "max_iter", "tol", "seed", "sample_size",
                    "oversampling", "init_rounds")
    _array_names = ("cluster_centers_",)
    _attr_names = ("inertia_", "n_iter_", "n_features_in_")

    def __init__(self, n_clusters=8, init="k-means++", max_iter=300, tol=1e-4, seed=0,
                 sample_size=10000, oversampling=2.0, init_rounds=5):
        if isinstance(init, str) and init not in ("k-means++", "k-means||"):
            raise ModelError(f"init must be 'k-means++', 'k-means||' or an array, got {init!r}")
        if int(n_clusters) < 1:
            raise ModelError(f"n_clusters must be at least 1, got {n_clusters!r}")
        if int(max_iter) < 1:
            raise ModelError(f"max_iter must be at least 1, got {max_iter!r}")
        self.n_clusters, self.init, self.max_iter, self.tol = int(n_clusters), init, int(max_iter), float(tol)
        self.seed, self.sample_size = seed, int(sample_size)
        self.oversampling, self.init_rounds = float(oversampling), int(init_rounds)

    def fit(self, dataset, *, workers=None, cluster=None):
        """Seed, then run Lloyd passes until the centre shift is under ``tol`` x the mean feature
        variance (as scikit-learn scales it) or ``max_iter`` passes ran."""
        data = cached(as_data(dataset, need_y=False))  # read once by the scan, reused by every pass
        runner = self._runner(workers, cluster)
        n = scan(data, runner, labels=False)["n"]
        k = self.n_clusters
        if k > n:
            raise ModelError(f"n_clusters={k} is larger than the number of points ({n})")
        self.n_features_in_ = data.n_features
        tol = 0.0
        if self.tol > 0:
            _, _, var = moments(data, runner)
            tol = self.tol * float(var.mean())
        C = self._initial_centers(data, n, runner)
        self.n_iter_ = 0
        for step in range(self.max_iter):
            started = time.perf_counter()
            newC, inertia, counts = self._lloyd(data, C, runner, step)
            shift = float(((newC - C) ** 2).sum())
            runner.record(step, started, loss=inertia, shift=shift,
                          empty=float((counts == 0).sum()))
            C, self.n_iter_ = newC, step + 1
            if shift <= tol:
                break
        self.cluster_centers_ = C
        if shift == 0:
            self.inertia_ = inertia
        else:
            self.inertia_ = self._lloyd(data, C, runner, self.n_iter_)[1]
        self.fitted_ = True
        return self

    # -- Lloyd

    def _lloyd(self, data: Data, C: np.ndarray, runner, step: int):
        """One Lloyd pass: new centres (empty ones re-seeded from the farthest points), inertia, counts."""
        k, d = C.shape
        bc = mapred.broadcast(C)
        top = k

        def map_batch(block):
            X, _ = unpack(block)
            sums, counts, near, _ = lloyd_stats(X, bc.value)
            mapred.counter(*RECORDS, len(X))
            yield 0, np.concatenate([sums.ravel(), counts, [near.sum()]])
            far = farthest(near, top)
            yield 1, (near[far], np.asarray(X[far], dtype=np.float64))

        def reduce(key, values):
            yield from _lloyd_reduce(key, values, top)

        job = mapred.Job(map_batch=map_batch, combiner=reduce, reducer=reduce,
                         output_format="msgpack", name=f"kmeans.lloyd.{step}")
        pairs, counters = runner.run(job, data.ds)
        runner.last_records = int(counters.get(RECORDS[0], {}).get(RECORDS[1], 0))
        out = dict(pairs)
        v = np.asarray(out[0])
        sums, counts, inertia = v[:k * d].reshape(k, d), v[k * d:k * d + k], float(v[-1])
        newC = C.copy()
        full = counts > 0
        newC[full] = sums[full] / counts[full, None]
        empty = np.nonzero(~full)[0]
        if len(empty):
            far_d, far_x = out[1]
            order = np.argsort(-np.asarray(far_d), kind="stable")
            for j, i in zip(empty, order):
                newC[j] = np.asarray(far_x)[i]
        return newC, inertia, counts

    # -- initialisation

    def _initial_centers(self, data: Data, n: int, runner) -> np.ndarray:
        k, rng = self.n_clusters, np.random.default_rng(self.seed)
        if not isinstance(self.init, str):
            C = np.asarray(self.init, dtype=np.float64)
            if C.shape != (k, data.n_features):
                raise ModelError(f"init array has shape {C.shape}, expected ({k}, {data.n_features})")
            return C.copy()
        if self.init == "k-means++":
            rate = min(1.0, max(self.sample_size, 4 * k) / n)
            sample = self._sample(data, rate, self.seed, runner, minimum=k)
            return kmeans_pp(sample, k, rng)
        return self._kmeans_parallel(data, n, runner, rng)

    def _sample(self, data: Data, rate: float, seed: int, runner, minimum: int = 1) -> np.ndarray:
        """Rows whose hash of (seed, row id) is under ``rate``, in row order.

        Fewer than ``minimum`` rows (a tiny dataset or unlucky hashes): the
        rate is raised tenfold and the sample drawn again.
        """
        def map_batch(block):
            X, _ = unpack(block)
            start = block_start()
            keep = row_hash(np.arange(start, start + len(X)), seed) < rate
            if keep.any():
                yield start, np.asarray(X[keep], dtype=np.float64)

        job = mapred.Job(map_batch=map_batch, output_format="msgpack", name="kmeans.sample")
        pairs, _ = runner.run(job, data.ds)
        pairs.sort(key=lambda kv: kv[0])
        sample = np.vstack([v for _, v in pairs]) if pairs else np.empty((0, data.n_features))
        if len(sample) < minimum and rate < 1.0:
            return self._sample(data, min(1.0, rate * 10), seed, runner, minimum)
        return sample

    def _kmeans_parallel(self, data: Data, n: int, runner, rng) -> np.ndarray:
        """k-means|| (Bahmani et al.): oversampled rounds by jobs, then weighted k-means++ locally."""
        k, ell = self.n_clusters, self.oversampling * self.n_clusters
        first = self._sample(data, min(1.0, 16.0 / n), self.seed, runner)
        C = first[[int(rng.integers(len(first)))]]
        for r in range(self.init_rounds):
            bc = mapred.broadcast(C)

            def cost(block, bc=bc):
                X, _ = unpack(block)
                return [sq_distances(X, bc.value).min(axis=1).sum()]

            phi = runner.run_sum(sum_job(cost, f"kmeans.par.cost.{r}"), data.ds)[0]
            if phi <= 0:
                break
            C = np.vstack([C, self._draw(data, bc, ell / phi, self.seed + 1 + r, runner)])
        bc = mapred.broadcast(C)

        def weights(block):
            X, _ = unpack(block)
            return np.bincount(np.argmin(sq_distances(X, bc.value), axis=1), minlength=len(bc.value))

        w = runner.run_sum(sum_job(weights, "kmeans.par.weights"), data.ds)
        if len(C) < k:
            rate = min(1.0, max(self.sample_size, 4 * k) / n)  # too few candidates: k-means++ instead
            return kmeans_pp(self._sample(data, rate, self.seed, runner, minimum=k), k, rng)
        return kmeans_pp(C, k, rng, weights=np.maximum(w, 1e-12))

    def _draw(self, data, bc, factor: float, seed: int, runner) -> np.ndarray:
        def map_batch(block):
            X, _ = unpack(block)
            start = block_start()
            d2 = sq_distances(X, bc.value).min(axis=1)
            keep = row_hash(np.arange(start, start + len(X)), seed) < factor * d2
            if keep.any():
                yield start, np.asarray(X[keep], dtype=np.float64)

        job = mapred.Job(map_batch=map_batch, output_format="msgpack", name="kmeans.par.draw")
        pairs, _ = runner.run(job, data.ds)
        pairs.sort(key=lambda kv: kv[0])
        return np.vstack([v for _, v in pairs]) if pairs else np.empty((0, data.n_features))

    # -- prediction

    def predict(self, X):
        """Index of the nearest centre of each row."""
        self._check_fitted()
        X = check_width(X, self.n_features_in_)
        return np.argmin(sq_distances(np.asarray(X, dtype=np.float64), self.cluster_centers_), axis=1)

    def transform(self, X):
        """Euclidean distance of each row to each centre."""
        self._check_fitted()
        X = check_width(X, self.n_features_in_)
        return np.sqrt(sq_distances(np.asarray(X, dtype=np.float64), self.cluster_centers_))

    def score(self, X) -> float:
        """Negative inertia of X, as scikit-learn's ``score``."""
        return -float(self.transform(X).min(axis=1).__pow__(2).sum())
