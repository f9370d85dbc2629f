"""Linear and logistic regression as map and reduce functions.

Map/reduce functions (documented in docs/models.md):

- exact linear regression: map emits ``[X1ᵀX1, X1ᵀy, n]`` of a block (X1 = X
  with a ones column); reduce adds; the driver centres and solves.
- gradient descent (``solver="gd"``): map emits the block's gradient sum, loss
  sum, correct count and row count at the broadcast weights; reduce adds; the
  driver takes one step per pass.  Sums are exact, so the model does not depend
  on the number of splits or workers (up to float rounding).
- mini-batch SGD (``solver="sgd"``): each task runs its block's mini-batches
  starting from the broadcast weights (parameter mixing); map emits the
  row-weighted final weights; reduce adds; the driver divides by the rows.
- asynchronous SGD (``solver="async"``): see ``models.async_sgd``.
"""
from __future__ import annotations

import time

import numpy as np

import mapred
from mapred.errors import ModelError

from ._common import Data, as_data, cached, check_finite_loss, check_width, seeded_rng, sum_job, unpack
from ._logistic import PassMonitor, _sigmoid, prox_step, sgd_block, softmax_stats
from .base import Estimator
from .persist import register
from .preprocess import moments
from .scan import classes_from, scan


# ---------------------------------------------------------------- linear regression


@register
class LinearRegression(Estimator):
    """Least squares: ``solver="exact"`` (one X^T X pass and a solve) or ``"gd"`` (gradient descent).

    GD runs on internally standardised features (one extra moments pass) so
    one learning rate suits any feature scale; coefficients are mapped back.
    """

    _param_names = ("solver", "fit_intercept", "alpha", "lr", "max_iter", "tol", "momentum")
    _array_names = ("coef_",)
    _attr_names = ("intercept_", "n_features_in_")

    def __init__(self, solver="exact", fit_intercept=True, alpha=0.0, lr=0.2, max_iter=500,
                 tol=1e-12, momentum=0.9):
        if solver not in ("exact", "gd"):
            raise ModelError(f"solver must be 'exact' or 'gd', got {solver!r}")
        self.solver, self.fit_intercept, self.alpha = solver, fit_intercept, float(alpha)
        self.lr, self.max_iter, self.tol = float(lr), int(max_iter), float(tol)
        self.momentum = float(momentum)

    def fit(self, dataset, y=None, *, workers=None, cluster=None):
        """Train on ``dataset`` (an engine dataset, ``Data``, or numpy X with y)."""
        data = as_data(dataset, y)
        if self.solver == "gd":
            data = cached(data)  # the scan reads the blocks once; every GD pass reuses them
        runner = self._runner(workers, cluster)
        scan(data, runner, labels=False)
        self.n_features_in_ = data.n_features
        if self.solver == "exact":
            self._fit_exact(data, runner)
        else:
            self._fit_gd(data, runner)
        self.fitted_ = True
        return self

    def _fit_exact(self, data: Data, runner) -> None:
        d, started = data.n_features, time.perf_counter()

        def stat(block):
            X, y = unpack(block)
            X1 = np.hstack([X, np.ones((len(X), 1))])
            return np.concatenate([(X1.T @ X1).ravel(), X1.T @ y, [float(y @ y)]])

        v = runner.run_sum(sum_job(stat, "linreg.exact"), data.ds)
        S = v[:(d + 1) ** 2].reshape(d + 1, d + 1)
        Sxy, yy = v[(d + 1) ** 2:-1], v[-1]
        n = S[d, d]
        if self.fit_intercept:
            mx, my = S[d, :d] / n, Sxy[d] / n
            A = S[:d, :d] - n * np.outer(mx, mx)
            b = Sxy[:d] - n * mx * my
        else:
            A, b = S[:d, :d], Sxy[:d]
        A = A + self.alpha * np.eye(d)
        try:
            w = np.linalg.solve(A, b)
        except np.linalg.LinAlgError:
            w = np.linalg.lstsq(A, b, rcond=None)[0]
        self.coef_ = w
        self.intercept_ = float(my - mx @ w) if self.fit_intercept else 0.0
        sse = yy - 2 * (w @ Sxy[:d] + self.intercept_ * Sxy[d]) + w @ S[:d, :d] @ w \
            + 2 * self.intercept_ * (S[d, :d] @ w) + n * self.intercept_ ** 2
        runner.record(0, started, loss=0.5 * sse / n)

    def _fit_gd(self, data: Data, runner) -> None:
        d = data.n_features
        n, mean, var = moments(data, runner)
        scale = np.sqrt(var)
        scale[scale == 0] = 1.0
        if not self.fit_intercept:
            mean = np.zeros(d)
        w, b = np.zeros(d), 0.0
        vw, vb = np.zeros(d), 0.0  # heavy-ball velocity: full-batch gradients make momentum safe
        first = None
        prev = np.inf
        for step in range(self.max_iter):
            started = time.perf_counter()
            bc = mapred.broadcast(np.concatenate([w, [b], mean, scale]))

            def stat(block, bc=bc):
                X, y = unpack(block)
                p = bc.value
                Z = (X - p[d + 1:2 * d + 1]) / p[2 * d + 1:]
                r = Z @ p[:d] + p[d] - y
                return np.concatenate([Z.T @ r, [r.sum(), r @ r]])

            v = runner.run_sum(sum_job(stat, f"linreg.gd.{step}"), data.ds)
            loss = 0.5 * v[d + 1] / n + 0.5 * self.alpha * (w @ w)
            check_finite_loss(loss, step)
            first = loss if first is None else first
            if loss > 10 * max(first, 1e-12):
                raise ModelError(f"training diverged at pass {step}: loss {loss:.3g} is over 10x "
                                 f"the first pass's (the zero model's); lower lr={self.lr}")
            runner.record(step, started, loss=loss)
            vw = self.momentum * vw - self.lr * (v[:d] / n + self.alpha * w)
            w = w + vw
            if self.fit_intercept:
                vb = self.momentum * vb - self.lr * v[d] / n
                b = b + vb
            if abs(prev - loss) <= self.tol * max(1.0, abs(loss)):
                break
            prev = loss
        self.coef_ = w / scale
        self.intercept_ = float(b - mean @ self.coef_)

    def predict(self, X):
        """Predicted targets, X @ coef_ + intercept_."""
        self._check_fitted()
        X = check_width(X, self.n_features_in_)
        return X @ self.coef_ + self.intercept_

    def score(self, X, y) -> float:
        """R² of the predictions, as scikit-learn's ``score``."""
        y = np.asarray(y, dtype=float)
        r = y - self.predict(X)
        return 1.0 - (r @ r) / ((y - y.mean()) @ (y - y.mean()))


# ---------------------------------------------------------------- logistic regression


@register
class LogisticRegression(Estimator):
    """Binary (sigmoid) or multinomial (softmax) logistic regression with L2 or L1 (proximal).

    ``alpha`` is the regularisation strength on the mean loss
    (scikit-learn's ``C`` corresponds to ``alpha = 1 / (C * n)``).
    """

    _param_names = ("solver", "lr", "epochs", "batch_size", "alpha", "penalty", "lr_schedule",
                    "power_t", "tol", "n_iter_no_change", "seed", "max_staleness", "fit_intercept",
                    "momentum", "classes")
    _array_names = ("coef_", "intercept_", "classes_")
    _attr_names = ("n_features_in_", "staleness_", "sparse_")

    def __init__(self, solver="gd", lr=0.1, epochs=100, batch_size=256, alpha=0.0, penalty="l2",
                 lr_schedule="invscaling", power_t=0.5, tol=1e-6, n_iter_no_change=5, seed=0,
                 max_staleness=8, fit_intercept=True, classes=None, momentum=0.9,
                 holder_host="127.0.0.1"):
        if solver not in ("gd", "sgd", "async"):
            raise ModelError(f"solver must be 'gd', 'sgd' or 'async', got {solver!r}")
        if penalty not in ("l2", "l1", None, "none"):
            raise ModelError(f"penalty must be 'l2', 'l1' or None, got {penalty!r}")
        if not lr > 0:
            raise ModelError(f"lr must be positive, got {lr!r}")
        if int(batch_size) < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size!r}")
        self.solver, self.lr, self.epochs, self.batch_size = solver, float(lr), int(epochs), int(batch_size)
        self.alpha, self.penalty, self.lr_schedule = float(alpha), penalty, lr_schedule
        self.power_t, self.tol, self.n_iter_no_change = float(power_t), float(tol), int(n_iter_no_change)
        self.seed, self.max_staleness, self.fit_intercept = seed, int(max_staleness), fit_intercept
        # where solver="async" binds its parameter holder: an address every worker can reach
        self.holder_host = holder_host
        self.classes, self.momentum = classes, float(momentum)
        self.staleness_ = {}
        self.sparse_ = False

    # -- fitting

    def fit(self, dataset, y=None, *, validation=None, workers=None, cluster=None):
        """Train on ``dataset`` (an engine dataset, ``Data``, or numpy X with y).

        ``validation`` (a dataset or an ``(X, y)`` tuple) turns on early
        stopping: the weights of the best validation loss are kept.
        """
        data = cached(as_data(dataset, y))  # the scan reads the blocks once; passes reuse them
        runner = self._runner(workers, cluster)
        info = scan(data, runner, classes=self.classes)
        self.classes_ = classes_from(info, self.classes)
        self.n_features_in_, self.sparse_ = data.n_features, data.sparse
        valid = None
        if validation is not None:
            valid = as_data(*validation) if isinstance(validation, tuple) else as_data(validation)
            if valid.n_features != data.n_features:
                raise ModelError(f"validation has {valid.n_features} features, training data "
                                 f"{data.n_features}")
        K = 1 if len(self.classes_) == 2 else len(self.classes_)
        W, b = np.zeros((data.n_features, K)), np.zeros(K)
        if self.solver == "async":
            from .async_sgd import fit_async
            W, b = fit_async(self, data, info["n"], W, b, runner, valid)
        else:
            W, b = self._fit_sync(data, info["n"], W, b, runner, valid)
        self.coef_, self.intercept_ = W.T.copy(), b.copy()
        self.fitted_ = True
        return self

    def _loss_limit(self) -> float:
        """Divergence: a mean loss 10x that of the zero model (log K, the constant guess)."""
        return 10.0 * np.log(max(2, len(self.classes_)))

    def _lr_at(self, step: int) -> float:
        if self.lr_schedule == "constant" or self.solver == "gd":
            return self.lr
        return self.lr / (1.0 + step) ** self.power_t

    def _fit_sync(self, data, n, W, b, runner, valid):
        """GD or parameter-mixing SGD: one job per pass, weights broadcast, early stopping."""
        monitor = PassMonitor(self, runner, valid)
        prev = np.inf
        self._velocity = (np.zeros_like(W), np.zeros_like(b))
        for step in range(self.epochs):
            started = time.perf_counter()
            bc = mapred.broadcast(np.concatenate([W.ravel(), b]))
            v = runner.run_sum(self._pass_job(bc, W.shape, data, step), data.ds)
            W, b, loss, acc = self._apply(v, W, b, n, step)
            if monitor.after_pass(step, started, W, b, loss, acc):
                break
            if valid is None and self.solver == "gd" and abs(prev - loss) <= self.tol * max(1.0, loss):
                break
            prev = loss
        return monitor.result(W, b)

    def _pass_job(self, bc, shape, data: Data, step: int):
        d, K = shape
        multinomial = K > 1
        classes, sparse = self.classes_, data.sparse
        lr, alpha, penalty = self._lr_at(step), self.alpha, self.penalty
        batch, seed, solver, fit_b = self.batch_size, self.seed, self.solver, self.fit_intercept

        def stat(block):
            X, y = unpack(block, sparse, d)
            yi = np.searchsorted(classes, y)
            p = bc.value
            W0, b0 = p[:d * K].reshape(d, K), p[d * K:]
            if solver == "gd":
                loss, gW, gb, correct = softmax_stats(X, yi, W0, b0, multinomial)
                return np.concatenate([gW.ravel(), gb if fit_b else 0 * gb, [loss, correct, len(yi)]])
            rng = seeded_rng(seed, step, mapred.context().split.start)
            W1, b1, loss, correct = sgd_block(X, yi, W0, b0, lr=lr, alpha=alpha, penalty=penalty,
                                              batch_size=batch, rng=rng, multinomial=multinomial)
            m = len(yi)
            b1 = b1 if fit_b else b0
            return np.concatenate([m * W1.ravel(), m * b1, [loss, correct, m]])

        return sum_job(stat, f"logreg.{self.solver}.{step}")

    def _apply(self, v, W, b, n, step):
        """Turn one pass's sums into new weights, mean loss and accuracy."""
        d, K = W.shape
        loss, correct, m = v[-3], v[-2], v[-1]
        if self.solver == "gd":  # heavy-ball step on the exact full gradient, then the prox step
            lr, mu = self._lr_at(step), self.momentum
            vW = mu * self._velocity[0] - lr * v[:d * K].reshape(d, K) / m
            vb = mu * self._velocity[1] - lr * v[d * K:d * K + K] / m
            W_new = prox_step(W + vW, lr, self.alpha, self.penalty)
            self._velocity = (W_new - W, vb)
            W, b = W_new, b + vb
        else:
            W, b = v[:d * K].reshape(d, K) / m, v[d * K:d * K + K] / m
        mean_loss = loss / m + (0.5 * self.alpha * float((W * W).sum()) if self.penalty == "l2" else 0.0)
        return W, b, mean_loss, correct / m

    def _loss_on(self, data: Data, W, b, runner):
        """Mean loss and accuracy of (W, b) on another dataset, by one summing job."""
        d, K = W.shape
        classes, sparse, multinomial = self.classes_, data.sparse, K > 1
        bc = mapred.broadcast(np.concatenate([W.ravel(), b]))

        def stat(block):
            X, y = unpack(block, sparse, d)
            p = bc.value
            yi = np.searchsorted(classes, y)
            loss, _, _, correct = softmax_stats(X, yi, p[:d * K].reshape(d, K), p[d * K:], multinomial)
            return np.array([loss, correct, len(yi)])

        v = runner.run_sum(sum_job(stat, "logreg.validate"), data.ds)
        return v[0] / v[2], v[1] / v[2]

    # -- prediction

    def decision_function(self, X):
        """Raw scores: (n,) for binary, (n, classes) for multinomial."""
        self._check_fitted()
        X = check_width(X, self.n_features_in_)
        Z = np.asarray(X @ self.coef_.T) + self.intercept_
        return Z[:, 0] if Z.shape[1] == 1 else Z

    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``."""
        Z = self.decision_function(X)
        if Z.ndim == 1:
            p = _sigmoid(Z)
            return np.column_stack([1 - p, p])
        Z = Z - Z.max(axis=1, keepdims=True)
        E = np.exp(Z)
        return E / E.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most likely class of each row."""
        Z = self.decision_function(X)
        idx = (Z > 0).astype(int) if Z.ndim == 1 else np.argmax(Z, axis=1)
        return self.classes_[idx]

    def score(self, X, y) -> float:
        """Mean accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def _after_load(self) -> None:
        self.classes_ = np.asarray(self.classes_)
