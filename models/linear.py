"""Linear and logistic regression as map and reduce functions.

Map/reduce functions (documented in docs/models.md):

- exact linear regression: map emits ``[X1ᵀX1, X1ᵀy, n]`` of a block (X1 = X
  with a ones column); reduce adds; the driver centres and solves.
- Newton and L-BFGS (the default solvers, ``models.optim``): map emits the
  block's loss sum, gradient sum (and Hessian sum for Newton) at broadcast
  weights; reduce adds; the driver steps in standardised coordinates, so raw
  and scaled data converge alike.
- gradient descent (``solver="gd"`` with a given ``lr``): map emits the same
  gradient sums; the driver takes one heavy-ball step per pass.  Sums are
  exact, so the model does not depend on the number of splits or workers (up
  to float rounding).
- mini-batch SGD (``solver="sgd"``) and asynchronous SGD (``solver="async"``):
  see ``models.sgd`` and ``models.async_sgd``.

Regularisation means what it means in scikit-learn: ``LogisticRegression(C=)``
is ``sklearn.linear_model.LogisticRegression``'s C, ``LinearRegression(alpha=)``
is ``sklearn.linear_model.Ridge``'s alpha.
"""
from __future__ import annotations

import time

import numpy as np

import mapred
from mapred.errors import ModelError

from ._common import (
    Data,
    as_data,
    cached,
    check_class_labels,
    check_finite_loss,
    sum_job,
    unpack,
)
from ._logistic import _sigmoid, logistic_hessian, softmax_stats
from .base import Estimator
from .optim import (
    NEWTON_MAX_PARAMS,
    Coordinates,
    Evaluation,
    lbfgs,
    newton,
    standardiser,
    warn_unconverged,
)
from .persist import register
from .preprocess import moments
from .protocol import ClassifierMixin, DataError, RegressorMixin, sparse_ok, with_tags
from .scan import classes_from, scan


def _positive(model, name: str, allow_none: bool = False) -> None:
    value = getattr(model, name)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not value > 0:
        raise DataError(f"{name} must be positive, got {value!r}")


def _densifies(data: Data) -> bool:
    """Whether a sparse dataset's blocks are small enough to densify for the Hessian (64 MiB)."""
    rows = data.num_rows / max(1, data.ds.num_splits)
    return rows * data.n_features * 8 <= 64 << 20


# ---------------------------------------------------------------- linear regression


@register
class LinearRegression(RegressorMixin, Estimator):
    """Least squares, optionally ridge-penalised, as scikit-learn's ``LinearRegression`` / ``Ridge``.

    Parameters
    ----------
    solver : "exact" (default: one X'X pass and a solve), "lbfgs" (quasi-Newton
        over gradient passes, for wide data where X'X does not fit), or "gd"
        (gradient passes: with ``lr=None`` the step sizes come from L-BFGS, as
        "lbfgs"; with a given ``lr``, heavy-ball gradient descent at that rate).
    alpha : the L2 penalty with scikit-learn ``Ridge``'s meaning: minimise
        ``||y - Xw - b||² + alpha ||w||²`` (the intercept is not penalised).
        ``alpha=0`` is ordinary least squares.
    tol : L-BFGS stops when no standardised gradient entry of the objective
        (divided by its value at the zero model) exceeds ``tol``; GD stops when a
        pass improves the loss by less than ``tol`` relative.
    max_iter : the most passes an iterative solver runs (a ``ConvergenceWarning``
        says when it stopped there short of ``tol``).
    """

    _param_names = ("solver", "fit_intercept", "alpha", "lr", "max_iter", "tol", "momentum")
    _array_names = ("coef_",)
    _attr_names = ("intercept_", "n_features_in_", "n_iter_")

    def __init__(self, solver="exact", fit_intercept=True, alpha=0.0, lr=None, max_iter=500,
                 tol=None, momentum=0.9):
        self.solver, self.fit_intercept, self.alpha = solver, fit_intercept, alpha
        self.lr, self.max_iter, self.tol, self.momentum = lr, max_iter, tol, momentum
        self._check_params()

    def _check_params(self) -> None:
        if self.solver not in ("exact", "gd", "lbfgs"):
            raise DataError(f"solver must be 'exact', 'lbfgs' or 'gd', got {self.solver!r}")
        if not isinstance(self.alpha, (int, float, np.number)) or self.alpha < 0:
            raise DataError(f"alpha must be a non-negative number, got {self.alpha!r}")
        _positive(self, "lr", allow_none=True)
        _positive(self, "tol", allow_none=True)
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise DataError(f"max_iter must be a positive integer, got {self.max_iter!r}")

    def fit(self, dataset, y=None, *, workers=None, cluster=None):
        """Train on ``dataset`` (an engine dataset, ``Data``, or numpy X with y)."""
        data = as_data(dataset, y)
        if data.sparse:
            raise DataError("LinearRegression takes dense features; sparse input is not supported")
        if self.solver != "exact":
            data = cached(data)  # the scan reads the blocks once; every pass reuses them
        runner = self._runner(workers, cluster)
        scan(data, runner, labels=False)
        self.n_features_in_ = data.n_features
        if self.solver == "exact":
            self._fit_exact(data, runner)
            self.n_iter_ = 1
        elif self.solver == "gd" and self.lr is not None:
            self._fit_gd(data, runner)
        else:
            self._fit_lbfgs(data, runner)
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

    def _gradient_job(self, w, b, d: int, step: int):
        bc = mapred.broadcast(np.concatenate([w, [b]]))

        def stat(block):
            X, y = unpack(block)
            p = bc.value
            r = X @ p[:d] + p[d] - y
            return np.concatenate([X.T @ r, [r.sum(), r @ r, len(r)]])

        return sum_job(stat, f"linreg.grad.{step}")

    def _fit_lbfgs(self, data: Data, runner) -> None:
        """L-BFGS on standardised coordinates; objective (||r||² + alpha ||w||²) / 2n, normalised."""
        d = data.n_features
        mean, scale = standardiser(data, runner, center=self.fit_intercept)
        coords = Coordinates(mean, scale, 1, self.fit_intercept)
        tol = 1e-8 if self.tol is None else self.tol
        norm = [None]

        def evaluate(theta, hessian=False):
            started = time.perf_counter()
            W, b = coords.to_original(theta)
            v = runner.run_sum(self._gradient_job(W[:, 0], float(b[0]), d, len(runner.history)), data.ds)
            n = v[-1]
            lam = self.alpha / n
            loss = 0.5 * v[d + 1] / n + 0.5 * lam * float(W[:, 0] @ W[:, 0])
            check_finite_loss(loss, len(runner.history))
            runner.record(len(runner.history), started, loss=loss)
            if norm[0] is None:
                norm[0] = max(loss, 1e-300)
            g = coords.gradient(v[:d, None] / n + lam * W, v[d:d + 1] / n)
            return Evaluation(loss / norm[0], g / norm[0])

        out = lbfgs(evaluate, np.zeros(d + 1), tol=tol, max_iter=self.max_iter)
        W, b = coords.to_original(out.theta)
        self.coef_, self.intercept_ = W[:, 0].copy(), float(b[0]) if self.fit_intercept else 0.0
        self.n_iter_ = out.n_iter
        if not out.converged and out.n_iter >= self.max_iter:
            warn_unconverged(self, "L-BFGS", self.max_iter, tol)

    def _fit_gd(self, data: Data, runner) -> None:
        d = data.n_features
        n, mean, var = moments(data, runner)
        scale = np.sqrt(var)
        scale[scale == 0] = 1.0
        if not self.fit_intercept:
            mean = np.zeros(d)
        lam = self.alpha / n  # Ridge's alpha on the sum is alpha / n on the mean
        tol = 1e-12 if self.tol is None else self.tol
        w, b = np.zeros(d), 0.0
        vw, vb = np.zeros(d), 0.0  # heavy-ball velocity: full-batch gradients make momentum safe
        first = None
        prev = np.inf
        self.n_iter_ = self.max_iter
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
            loss = 0.5 * v[d + 1] / n + 0.5 * lam * float((w / scale) @ (w / scale))
            check_finite_loss(loss, step)
            first = loss if first is None else first
            if loss > 10 * max(first, 1e-12):
                raise ModelError(f"training diverged at pass {step}: loss {loss:.3g} is over 10x "
                                 f"the first pass's (the zero model's); lower lr={self.lr}")
            runner.record(step, started, loss=loss)
            vw = self.momentum * vw - self.lr * (v[:d] / n + lam * w / scale ** 2)
            w = w + vw
            if self.fit_intercept:
                vb = self.momentum * vb - self.lr * v[d] / n
                b = b + vb
            if abs(prev - loss) <= tol * max(1.0, abs(loss)):
                self.n_iter_ = step + 1
                break
            prev = loss
        else:
            warn_unconverged(self, "gradient descent", self.max_iter, tol)
        self.coef_ = w / scale
        self.intercept_ = float(b - mean @ self.coef_)

    def predict(self, X):
        """Predicted targets, X @ coef_ + intercept_."""
        X = self._width(X)
        return X @ self.coef_ + self.intercept_

    def score(self, X, y, sample_weight=None) -> float:
        """R² of the predictions, as scikit-learn's ``score``."""
        from ._common import check_labels
        y = np.asarray(check_labels(y, len(X)), dtype=float)
        r = y - self.predict(X)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        ybar = (w @ y) / w.sum()
        return float(1.0 - (w @ (r * r)) / (w @ ((y - ybar) ** 2)))


# ---------------------------------------------------------------- logistic regression


@register
@with_tags(sparse_ok)
class LogisticRegression(ClassifierMixin, Estimator):
    """Binary (sigmoid) or multinomial (softmax) logistic regression.

    Parameters
    ----------
    solver : "auto" (default: Newton while the Hessian is small — for sparse
        input also while a block densifies in 64 MiB — else L-BFGS), "newton", "lbfgs", "gd" (full-batch proximal
        gradient, needed for ``penalty="l1"``), "sgd" or "async" (see
        ``models.sgd`` / ``models.async_sgd``).
    C : inverse regularisation strength with scikit-learn's meaning: minimise
        ``C * sum(log loss) + 0.5 ||w||²`` (L2) or ``C * sum(log loss) + ||w||_1``
        (L1); the intercept is not penalised.  ``C=1.0`` is scikit-learn's default.
    alpha : alternatively the strength on the *mean* loss (scikit-learn
        ``SGDClassifier``'s alpha): ``alpha = 1 / (C * n_samples)``.  Wins over C
        when given.
    penalty : "l2" (default), "l1" (gd, sgd, async) or None.
    tol : Newton stops when a step moves no standardised coefficient by more
        than ``tol * max(1, largest)`` (default 1e-4; the coefficients are then
        within about 1e-8 relative of the optimum); L-BFGS when no standardised
        gradient entry exceeds ``tol`` (default 1e-6); GD and SGD as documented
        in docs/models.md.
    max_iter : the most Newton or L-BFGS iterations (default 100); ``epochs``
        is the cap for gd, sgd and async.
    lr, lr_schedule, batch_size : SGD's step: ``lr_schedule="svrg"`` (default) is
        variance-reduced SGD (SVRG, the family of scikit-learn's SAG/SAGA) on
        internally standardised features, converging to the regularised
        optimum; ``lr=None`` is its step bound ``1/L`` (``models.sgd``,
        docs/models.md), ``tol`` (default 1e-5) the largest standardised entry
        of the full gradient at which it stops.  "adam" / "adagrad" are the
        previous adaptive recipe (lr 0.1, iterate averaging, early stopping);
        "invscaling" / "constant" plain SGD at ``lr / (1 + pass)^power_t`` or
        ``lr``.  ``batch_size="auto"`` is 1 row per SVRG step up to 10,000
        rows, then n/5,000 (16-256 for adam).  ``partial_fit`` continues by SVRG.  A
        ``ConvergenceWarning`` says when a solver stopped at its cap short of ``tol``.
    """

    _param_names = ("solver", "C", "alpha", "penalty", "fit_intercept", "tol", "max_iter", "lr",
                    "epochs", "batch_size", "lr_schedule", "power_t", "n_iter_no_change", "seed",
                    "max_staleness", "classes", "momentum", "holder_host")
    _array_names = ("coef_", "intercept_", "classes_")
    _attr_names = ("n_features_in_", "staleness_", "sparse_", "n_iter_")

    def __init__(self, solver="auto", C=1.0, alpha=None, penalty="l2", fit_intercept=True, tol=None,
                 max_iter=100, lr=None, epochs=100, batch_size="auto", lr_schedule="svrg",
                 power_t=0.5, n_iter_no_change=5, seed=0, max_staleness=8, classes=None,
                 momentum=0.9, holder_host="127.0.0.1"):
        self.solver, self.C, self.alpha, self.penalty = solver, C, alpha, penalty
        self.fit_intercept, self.tol, self.max_iter = fit_intercept, tol, max_iter
        self.lr, self.epochs, self.batch_size, self.lr_schedule = lr, epochs, batch_size, lr_schedule
        self.power_t, self.n_iter_no_change, self.seed = power_t, n_iter_no_change, seed
        self.max_staleness, self.classes, self.momentum = max_staleness, classes, momentum
        # where solver="async" binds its parameter holder: an address every worker can reach
        self.holder_host = holder_host
        self._check_params()

    def _check_params(self) -> None:
        if self.solver not in ("auto", "newton", "lbfgs", "gd", "sgd", "async"):
            raise DataError(f"solver must be 'auto', 'newton', 'lbfgs', 'gd', 'sgd' or 'async', "
                            f"got {self.solver!r}")
        if self.penalty not in ("l2", "l1", None, "none"):
            raise DataError(f"penalty must be 'l2', 'l1' or None, got {self.penalty!r}")
        _positive(self, "C")
        _positive(self, "lr", allow_none=True)
        _positive(self, "tol", allow_none=True)
        if self.alpha is not None and (not isinstance(self.alpha, (int, float, np.number))
                                       or self.alpha < 0):
            raise DataError(f"alpha must be a non-negative number or None, got {self.alpha!r}")
        if self.lr_schedule not in ("svrg", "adam", "adagrad", "invscaling", "constant"):
            raise DataError(f"lr_schedule must be 'svrg', 'adam', 'adagrad', 'invscaling' or "
                            f"'constant', got {self.lr_schedule!r}")
        for name in ("max_iter", "epochs") + (() if self.batch_size == "auto" else ("batch_size",)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise DataError(f"{name} must be at least 1, got {value!r}")

    # -- what the solvers share

    def _alpha(self, n: int) -> float:
        """The penalty's strength on the mean loss (0 without a penalty)."""
        if self.penalty in (None, "none"):
            return 0.0
        return float(self.alpha) if self.alpha is not None else 1.0 / (float(self.C) * n)

    def _solver(self, data: Data, K: int) -> str:
        if self.solver != "auto":
            return self.solver
        if self.penalty == "l1":
            return "gd"
        small = (data.n_features + 1) * K <= NEWTON_MAX_PARAMS
        return "newton" if small and (not data.sparse or _densifies(data)) else "lbfgs"

    def _batch(self, n: int) -> int:
        from .sgd import auto_batch
        return auto_batch(n) if self.batch_size == "auto" else int(self.batch_size)

    def _lr(self) -> float:
        return 0.1 if self.lr is None else float(self.lr)

    # -- fitting

    def fit(self, dataset, y=None, *, validation=None, workers=None, cluster=None):
        """Train on ``dataset`` (an engine dataset, ``Data``, or numpy/scipy-sparse X with y).

        ``validation`` (a dataset or an ``(X, y)`` tuple) turns on early
        stopping for gd/sgd/async: the weights of the best validation loss are kept.
        """
        check_class_labels(y)
        data = cached(as_data(dataset, y))  # the scan reads the blocks once; passes reuse them
        runner = self._runner(workers, cluster)
        info = scan(data, runner, classes=self.classes)
        self.classes_ = classes_from(info, self.classes)
        self.n_features_in_, self.sparse_ = data.n_features, data.sparse
        self.staleness_ = {}
        self._svrg, self._rows_seen = None, info["n"]  # what partial_fit continues from
        valid = None
        if validation is not None:
            valid = as_data(*validation) if isinstance(validation, tuple) else as_data(validation)
            if valid.n_features != data.n_features:
                raise DataError(f"validation has {valid.n_features} features, training data "
                                f"{data.n_features}")
        K = 1 if len(self.classes_) == 2 else len(self.classes_)
        solver = self._solver(data, K)
        if solver in ("newton", "lbfgs") and self.penalty == "l1":
            raise DataError(f"penalty='l1' needs solver='gd', 'sgd' or 'async' ({solver} needs a "
                            "smooth penalty)")
        W, b = np.zeros((data.n_features, K)), np.zeros(K)
        if solver in ("newton", "lbfgs"):
            W, b = self._fit_second_order(data, info["n"], K, runner, solver)
        elif solver == "async" and self.lr_schedule == "svrg":
            from .async_sgd import fit_async_svrg
            W, b = fit_async_svrg(self, data, info["n"], K, runner, valid)
        elif solver == "sgd" and self.lr_schedule == "svrg":
            from .sgd import fit_svrg
            W, b = fit_svrg(self, data, info["n"], K, runner, valid)
        elif solver == "async" and self.lr_schedule in ("adam", "adagrad"):
            from .async_sgd import fit_async_adaptive
            W, b = fit_async_adaptive(self, data, info["n"], K, runner, valid)
        elif solver == "async":
            from .async_sgd import fit_async
            W, b = fit_async(self, data, info["n"], W, b, runner, valid)
        elif solver == "sgd" and self.lr_schedule in ("adam", "adagrad"):
            from .sgd import fit_adaptive
            W, b = fit_adaptive(self, data, info["n"], K, runner, valid)
        else:
            from .sgd import fit_sync
            W, b = fit_sync(self, data, info["n"], W, b, runner, valid)
        self.coef_, self.intercept_ = W.T.copy(), b.copy()
        self.fitted_ = True
        return self

    def partial_fit(self, X, y, classes=None, *, workers=None, cluster=None):
        """Continue training on one batch (X, y) from the current weights: scikit-learn
        ``SGDClassifier.partial_fit``'s contract.

        ``classes`` (every label the stream will ever hold) is required on the
        first call and fixes ``classes_``; later calls may omit it (or must repeat
        it).  Each call runs one SVRG iteration (``models.sgd.fit_svrg``: a
        snapshot pass and a variance-reduced epoch pass over this batch; over the
        parameter holder when ``solver="async"``; any other solver's partial_fit
        uses sync SVRG), starting from ``coef_``/``intercept_``.  The features are
        standardised with the first batch's means and deviations.  The penalty is
        C's over the rows seen so far (``alpha = 1 / (C * rows seen)``), so one
        sweep over a data set's batches aims at ``fit``'s objective; ``alpha=``
        fixes a per-row strength instead.
        """
        from .optim import Coordinates, standardiser
        from .sgd import SvrgState
        check_class_labels(y)
        fitted = getattr(self, "fitted_", False)
        if not fitted and classes is None:
            raise DataError("classes must be passed on the first call to partial_fit: every label "
                            "the batches will hold, e.g. classes=np.unique(y_all)")
        if classes is not None:
            declared = np.unique(np.asarray(classes))
            if len(declared) < 2:
                raise DataError(f"classes must hold at least 2 labels, got {list(declared)}")
            if fitted and not np.array_equal(declared, self.classes_):
                raise DataError(f"classes={list(declared)} differs from the first call's "
                                f"{list(self.classes_)}")
        else:
            declared = self.classes_
        data = cached(as_data(X, y))
        if fitted and data.n_features != self.n_features_in_:
            raise DataError(f"X has {data.n_features} features, but {type(self).__name__} is "
                            f"expecting {self.n_features_in_} features as input (partial_fit "
                            f"batches must all have the first batch's width)")
        runner = self._runner(workers, cluster)
        info = scan(data, runner, classes=declared)
        self.classes_ = declared
        K = 1 if len(declared) == 2 else len(declared)
        saved = getattr(self, "_svrg", None) if fitted else None
        if saved is None or saved[0].K != K:
            mean, scale = standardiser(data, runner, center=self.fit_intercept)
            state = SvrgState(Coordinates(mean, scale, K, self.fit_intercept), 0.0, K,
                              penalty=self.penalty)
            theta = (state.coords.from_original(self.coef_.T, self.intercept_) if fitted
                     else np.zeros(data.n_features * K + K))
            self._rows_seen = 0
        else:
            state, theta = saved
        self._rows_seen = getattr(self, "_rows_seen", 0) + info["n"]
        state.set_alpha(self._alpha(self._rows_seen))
        state.eta = None  # the step bound of this batch's rows
        self.n_features_in_, self.sparse_ = data.n_features, data.sparse
        self.staleness_ = getattr(self, "staleness_", {}) or {}
        if self.solver == "async":
            from .async_sgd import fit_async_svrg as step_fn
        else:
            from .sgd import fit_svrg as step_fn
        W, b = step_fn(self, data, info["n"], K, runner, None, state=state, theta=theta, epochs=1)
        self.coef_, self.intercept_ = W.T.copy(), b.copy()
        self.fitted_ = True
        return self

    def _stats_job(self, W, b, data: Data, hessian: bool, step: int):
        """One pass at (W, b): [loss sum, gradient sums, correct, rows(, Hessian sum)]."""
        d, K = W.shape
        multinomial, classes, sparse = K > 1, self.classes_, data.sparse
        bc = mapred.broadcast(np.concatenate([W.ravel(), b]))

        def stat(block):
            X, y = unpack(block, sparse, d)
            yi = np.searchsorted(classes, y)
            p = bc.value
            W0, b0 = p[:d * K].reshape(d, K), p[d * K:]
            loss, gW, gb, correct = softmax_stats(X, yi, W0, b0, multinomial)
            parts = [[loss], gW.ravel(), gb, [correct, len(yi)]]
            if hessian:
                parts.append(logistic_hessian(X, W0, b0, multinomial).ravel())
            return np.concatenate(parts)

        return sum_job(stat, f"logreg.{'newton' if hessian else 'lbfgs'}.{step}")

    def _fit_second_order(self, data: Data, n: int, K: int, runner, solver: str):
        """Newton or L-BFGS on standardised coordinates (``models.optim``)."""
        d = data.n_features
        mean, scale = standardiser(data, runner, center=self.fit_intercept)
        coords = Coordinates(mean, scale, K, self.fit_intercept)
        alpha = self._alpha(n)
        pen_diag = np.concatenate([np.repeat(alpha / scale ** 2, K), np.zeros(K)])
        P = d * K + K

        def evaluate(theta, hessian):
            started = time.perf_counter()
            W, b = coords.to_original(theta)
            step = len(runner.history)
            v = runner.run_sum(self._stats_job(W, b, data, hessian, step), data.ds)
            m = v[P + 2]
            loss = v[0] / m + 0.5 * alpha * float((W * W).sum())
            check_finite_loss(loss, step)
            runner.record(step, started, loss=loss, accuracy=v[P + 1] / m)
            g = coords.gradient(v[1:1 + d * K].reshape(d, K) / m + alpha * W, v[1 + d * K:1 + P] / m)
            H = None
            if hessian:
                H = coords.hessian(v[P + 3:].reshape(P, P) / m) + np.diag(pen_diag)
            return Evaluation(loss, g, H)

        theta0 = np.zeros(P)
        if solver == "newton":
            tol = 1e-4 if self.tol is None else float(self.tol)
            out = newton(evaluate, theta0, tol=tol, max_iter=self.max_iter, K=K)
        else:
            tol = 1e-6 if self.tol is None else float(self.tol)
            out = lbfgs(evaluate, theta0, tol=tol, max_iter=self.max_iter)
        self.n_iter_ = out.n_iter
        if not out.converged and out.n_iter >= self.max_iter:
            warn_unconverged(self, solver, self.max_iter, tol)
        W, b = coords.to_original(out.theta)
        return W, (b if self.fit_intercept else np.zeros(K))

    def _loss_limit(self) -> float:
        """Divergence: a mean loss 10x that of the zero model (log K, the constant guess)."""
        return 10.0 * np.log(max(2, len(self.classes_)))

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
        X = self._width(X)
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

    def predict_log_proba(self, X):
        """Log of ``predict_proba``."""
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most likely class of each row."""
        Z = self.decision_function(X)
        idx = (Z > 0).astype(int) if Z.ndim == 1 else np.argmax(Z, axis=1)
        return self.classes_[idx]

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy on (X, y)."""
        hit = (self.predict(X) == np.asarray(y).ravel()).astype(float)
        return float(np.average(hit, weights=sample_weight))

    def _after_load(self) -> None:
        self.classes_ = np.asarray(self.classes_)
