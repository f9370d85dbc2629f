"""k-means: n_init seedings (k-means++ on a sample or k-means||), all run by the same Lloyd passes.

Map/reduce functions (docs/models.md):

- Lloyd pass, batched over inits: the broadcast holds every live init's k
  centres; map computes one block's distances to all of them with one matrix
  product, assigns each point to its nearest centre *within each init*, and
  emits key 0 = ``[per-init per-centre sums, counts, inertias]`` and key 1 =
  each init's k farthest points; reduce adds key 0 and keeps each init's
  global k farthest of key 1 (to re-seed empty clusters).  So ``n_init=10``
  reads the data as often as one fit does; an init leaves the broadcast once
  its centres stop moving.
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

from ._common import (
    RECORDS,
    Data,
    as_data,
    block_start,
    cached,
    row_hash,
    sum_job,
    unpack,
)
from .base import Estimator, collect_predictions
from .optim import warn_unconverged
from .persist import register
from .preprocess import moments
from .protocol import ClusterMixin, DataError, TransformerMixin
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
    sums, counts, near, labels = lloyd_stats_many(X, C[None])
    return sums[0], counts[0], near[:, 0], labels[:, 0]


def lloyd_stats_many(X: np.ndarray, C: np.ndarray):
    """``lloyd_stats`` for r inits at once: C is (r, k, d); returns sums (r, k, d), counts (r, k),
    near (n, r), labels (n, r).  One product X C' covers every init; argmin is per init."""
    import scipy.sparse as sp
    n, (r, k, d) = X.shape[0], C.shape
    flat = C.reshape(r * k, d)
    D = X @ flat.T
    D *= -2.0
    D += (flat * flat).sum(axis=1)
    D = D.reshape(n, r, k)
    labels = np.argmin(D, axis=2)
    near = np.take_along_axis(D, labels[:, :, None], axis=2)[:, :, 0]
    near = np.maximum(near + np.einsum("ij,ij->i", X, X)[:, None], 0.0)
    cell = (labels + np.arange(r)[None, :] * k).ravel()  # row-major: point i, init j
    counts = np.bincount(cell, minlength=r * k).astype(np.float64).reshape(r, k)
    indicator = sp.csr_matrix((np.ones(n * r), (cell, np.repeat(np.arange(n), r))), shape=(r * k, n))
    sums = np.asarray(indicator @ X, dtype=np.float64).reshape(r, k, d)
    return sums, counts, near, labels


def farthest(near: np.ndarray, top: int) -> np.ndarray:
    """Indices of the ``top`` largest distances, largest first (a partition, not a full sort)."""
    if len(near) > top:
        part = np.argpartition(-near, top - 1)[:top]
    else:
        part = np.arange(len(near))
    return part[np.argsort(-near[part], kind="stable")]


def kmeans_pp(X: np.ndarray, k: int, rng: np.random.Generator, weights=None, trials=None) -> np.ndarray:
    """Greedy (weighted) k-means++ seeding on an in-memory sample, as scikit-learn seeds.

    Each new centre is the best of ``trials`` D²-weighted candidates (default
    2 + log k, Arthur & Vassilvitskii's greedy variant that scikit-learn uses):
    the one that lowers the sample's potential most.
    """
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
    trials = (2 + int(np.log(k))) if trials is None else int(trials)
    centers = [X[rng.choice(len(X), p=w / w.sum())]]
    d2 = sq_distances(X, centers[0][None, :])[:, 0]
    for _ in range(1, k):
        p = w * d2
        total = p.sum()
        if total <= 0:
            centers.append(X[int(rng.integers(len(X)))])
            continue
        cand = rng.choice(len(X), size=trials, p=p / total)
        cand_d2 = np.minimum(d2[None, :], sq_distances(X[cand], X).reshape(trials, -1))
        best = int(np.argmin(cand_d2 @ w))
        centers.append(X[cand[best]])
        d2 = cand_d2[best]
    return np.array(centers, dtype=np.float64)


def _lloyd_reduce(key, values, top: int):
    """Key 0: add the sums vectors.  Key 1: keep each init's ``top`` farthest points seen."""
    if key == 0:
        total = None
        for v in values:
            total = np.array(v, dtype=np.float64) if total is None else total + v
        yield key, total
        return
    best_d, best_x = None, None
    for dist, x in values:
        dist, x = np.asarray(dist), np.asarray(x)
        best_d = dist if best_d is None else np.concatenate([best_d, dist], axis=1)
        best_x = x if best_x is None else np.concatenate([best_x, x], axis=1)
    keep = np.argsort(-best_d, axis=1, kind="stable")[:, :top]
    yield key, (np.take_along_axis(best_d, keep, axis=1),
                np.take_along_axis(best_x, keep[:, :, None], axis=1))


def _farthest_many(near: np.ndarray, X: np.ndarray, top: int):
    """Each init's ``top`` farthest points of a block: distances (r, top) and points (r, top, d)."""
    idx = np.stack([farthest(near[:, j], top) for j in range(near.shape[1])])
    return np.take_along_axis(near.T, idx, axis=1), np.asarray(X, dtype=np.float64)[idx]


@register
class KMeans(ClusterMixin, TransformerMixin, Estimator):
    """k-means with ``n_init`` seedings run together, as scikit-learn's ``KMeans``.

    Parameters
    ----------
    n_clusters : k.
    init : "k-means++" (greedy k-means++ on a sample of ``sample_size`` rows),
        "k-means||" (Bahmani et al.'s oversampling rounds over the data, then
        weighted k-means++ on the candidates; for data too large to sample
        well) or a (k, d) array of starting centres (then one init).
    n_init : how many seedings; all run in the same Lloyd passes (one pass reads
        the data once for every init) and the lowest inertia wins.  Default 4:
        on every data set scikit-learn ships, it lands within 2% of the best of
        10 scikit-learn inits (tests/models/test_defaults.py).
    tol : a run stops when its centres' squared shift is under ``tol`` times
        the mean feature variance (scikit-learn's scaling).
    """

    _param_names = ("n_clusters", "init", "n_init", "max_iter", "tol", "seed", "sample_size",
                    "oversampling", "init_rounds")
    _array_names = ("cluster_centers_", "labels_")
    _attr_names = ("inertia_", "n_iter_", "n_features_in_", "best_init_")

    def __init__(self, n_clusters=8, init="k-means++", n_init=4, max_iter=300, tol=1e-4, seed=0,
                 sample_size=10000, oversampling=2.0, init_rounds=5):
        self.n_clusters, self.init, self.n_init, self.max_iter = n_clusters, init, n_init, max_iter
        self.tol, self.seed, self.sample_size = tol, seed, sample_size
        self.oversampling, self.init_rounds = oversampling, init_rounds
        self._check_params()

    def _check_params(self) -> None:
        if isinstance(self.init, str) and self.init not in ("k-means++", "k-means||"):
            raise DataError(f"init must be 'k-means++', 'k-means||' or an array, got {self.init!r}")
        for name in ("n_clusters", "max_iter", "n_init", "sample_size", "init_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise DataError(f"{name} must be at least 1, got {value!r}")
        if not isinstance(self.tol, (int, float, np.number)) or self.tol < 0:
            raise DataError(f"tol must be a non-negative number, got {self.tol!r}")

    def fit(self, dataset, y=None, *, workers=None, cluster=None):
        """Seed ``n_init`` times, then run Lloyd passes for all inits together until each one's
        centre shift is under ``tol`` x the mean feature variance or ``max_iter`` passes ran;
        keep the init of least inertia.  ``y`` is ignored (scikit-learn's signature)."""
        data = cached(as_data(dataset, need_y=False))  # read once by the scan, reused by every pass
        if data.sparse:
            raise DataError("KMeans takes dense features; sparse input is not supported")
        runner = self._runner(workers, cluster)
        n = scan(data, runner, labels=False)["n"]
        k = self.n_clusters
        if k > n:
            raise DataError(f"n_clusters={k} is larger than the number of points ({n})")
        self.n_features_in_ = data.n_features
        tol = 0.0
        if self.tol > 0:
            _, _, var = moments(data, runner)
            tol = self.tol * float(var.mean())
        C = self._initial_centers(data, n, runner)          # (r, k, d)
        C, inertia, iters, converged = self._run_lloyd(data, C, tol, runner)
        best = int(np.argmin(inertia))
        self.best_init_ = best
        self.cluster_centers_, self.inertia_ = C[best], float(inertia[best])
        self.n_iter_ = int(iters[best])
        if not converged[best]:
            warn_unconverged(self, "Lloyd", self.max_iter, self.tol)
        self.fitted_ = True
        self.labels_ = collect_predictions(self.predict_job(data, workers=runner.workers,
                                                            cluster=runner.cluster)).astype(np.int64)
        return self

    def fit_predict(self, X, y=None, **kw):
        """Fit, then the cluster index of each training row (``labels_``)."""
        return self.fit(X, **kw).labels_

    def _run_lloyd(self, data: Data, C: np.ndarray, tol: float, runner):
        """Lloyd passes over all live inits at once; returns centres, inertias (at the final
        centres), passes per init and which inits met ``tol``."""
        r = C.shape[0]
        live = np.ones(r, dtype=bool)
        iters = np.zeros(r, dtype=int)
        inertia = np.full(r, np.inf)
        step = 0
        for step in range(self.max_iter):
            started = time.perf_counter()
            ids = np.nonzero(live)[0]
            newC, inert, counts = self._lloyd(data, C[ids], runner, step)
            shift = ((newC - C[ids]) ** 2).sum(axis=(1, 2))
            inertia[ids] = inert
            runner.record(step, started, loss=float(inertia.min()), shift=float(shift.max()),
                          empty=float((counts == 0).sum()), live=float(len(ids)))
            C[ids] = newC
            iters[ids] += 1
            done = ids[shift <= tol]
            live[done] = False
            if not live.any():
                break
        # the inertia of the final centres (the last pass measured the ones before its update)
        inertia = self._lloyd(data, C, runner, step + 1)[1]
        return C, inertia, iters, ~live

    # -- Lloyd

    def _lloyd(self, data: Data, C: np.ndarray, runner, step: int):
        """One Lloyd pass for r inits (C is (r, k, d)): new centres (empty ones re-seeded from each
        init's farthest points), inertias (r,) at the given centres, counts (r, k)."""
        r, k, d = C.shape
        bc = mapred.broadcast(C)
        top = k

        def map_batch(block):
            X, _ = unpack(block)
            sums, counts, near, _ = lloyd_stats_many(X, bc.value)
            mapred.counter(*RECORDS, len(X))
            yield 0, np.concatenate([sums.ravel(), counts.ravel(), near.sum(axis=0)])
            yield 1, _farthest_many(near, X, top)

        def reduce(key, values):
            yield from _lloyd_reduce(key, values, top)

        job = mapred.Job(map_batch=map_batch, combiner=reduce, reducer=reduce,
                         output_format="msgpack", name=f"kmeans.lloyd.{step}")
        pairs, counters = runner.run(job, data.ds)
        runner.last_records = int(counters.get(RECORDS[0], {}).get(RECORDS[1], 0))
        out = dict(pairs)
        v = np.asarray(out[0])
        sums = v[:r * k * d].reshape(r, k, d)
        counts = v[r * k * d:r * k * (d + 1)].reshape(r, k)
        inertia = v[r * k * (d + 1):]
        far_d, far_x = (np.asarray(a) for a in out[1])
        newC = C.copy()
        for j in range(r):
            full = counts[j] > 0
            newC[j, full] = sums[j, full] / counts[j, full, None]
            order = np.argsort(-far_d[j], kind="stable")
            for c, i in zip(np.nonzero(~full)[0], order):
                newC[j, c] = far_x[j, i]
        return newC, inertia, counts

    # -- initialisation

    def _initial_centers(self, data: Data, n: int, runner) -> np.ndarray:
        """``n_init`` seedings as an (r, k, d) array (one when ``init`` is an array)."""
        k, rng = self.n_clusters, np.random.default_rng(self.seed)
        if not isinstance(self.init, str):
            C = np.asarray(self.init, dtype=np.float64)
            if C.shape != (k, data.n_features):
                raise DataError(f"init array has shape {C.shape}, expected ({k}, {data.n_features})")
            return C[None].copy()
        if self.init == "k-means++":
            rate = min(1.0, max(self.sample_size, 4 * k) / n)
            sample = self._sample(data, rate, self.seed, runner, minimum=k)
            return np.stack([kmeans_pp(sample, k, rng) for _ in range(self.n_init)])
        cand, w = self._kmeans_parallel(data, n, runner, rng)
        return np.stack([kmeans_pp(cand, k, rng, weights=w) for _ in range(self.n_init)])

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

    def _kmeans_parallel(self, data: Data, n: int, runner, rng):
        """k-means|| (Bahmani et al.): oversampled rounds by jobs; returns the weighted candidates
        that every init's weighted k-means++ then draws from (locally, no more passes)."""
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
        if len(C) < k:  # too few candidates: a uniform sample instead
            rate = min(1.0, max(self.sample_size, 4 * k) / n)
            return self._sample(data, rate, self.seed, runner, minimum=k), None
        bc = mapred.broadcast(C)

        def weights(block):
            X, _ = unpack(block)
            return np.bincount(np.argmin(sq_distances(X, bc.value), axis=1), minlength=len(bc.value))

        w = runner.run_sum(sum_job(weights, "kmeans.par.weights"), data.ds)
        return C, np.maximum(w, 1e-12)

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
        X = self._width(X)
        return np.argmin(sq_distances(np.asarray(X, dtype=np.float64), self.cluster_centers_), axis=1)

    def transform(self, X):
        """Euclidean distance of each row to each centre."""
        X = self._width(X)
        return np.sqrt(sq_distances(np.asarray(X, dtype=np.float64), self.cluster_centers_))

    def score(self, X, y=None) -> float:
        """Negative inertia of X, as scikit-learn's ``score``."""
        return -float(self.transform(X).min(axis=1).__pow__(2).sum())
