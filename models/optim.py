"""Second-order solvers over map/reduce passes: Newton (IRLS) and L-BFGS, on standardised coordinates.

Each evaluation of the objective is one pass: map computes a block's loss
sum, gradient sum and (for Newton) Hessian sum at broadcast weights; reduce
adds them (Chu et al., "Map-Reduce for Machine Learning on Multicore", NIPS
2006, express Newton's method in this summation form).  The driver does the
linear algebra.

Why standardised coordinates: the driver optimises ``v`` with ``w = v / s``
and ``b = b' - m . w`` (m, s the column means and deviations from one
moments pass).  The objective is the same function of the same model, so the
optimum is identical, but its curvature no longer depends on the features'
units: L-BFGS and Newton's Cholesky solve behave the same on raw and scaled
data.  The map still works in original units (the weights it receives are
``w, b``), so no scaled copy of the data is ever made; the driver maps
gradients and Hessians through the (block-diagonal) change of variables.

Measured on scikit-learn's data (docs/models.md): Newton converges in 7-12
passes on breast_cancer (raw or scaled) and digits, where L-BFGS needs
hundreds to thousands for 1e-4 relative coefficients, because these
problems are nearly separable at C=1 and so badly conditioned.  Newton's pass
costs a (d+1)K square Hessian per block, so ``solver="auto"`` uses it while
(d+1)K <= ``NEWTON_MAX_PARAMS`` and the data are dense, L-BFGS otherwise.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .protocol import ConvergenceWarning

NEWTON_MAX_PARAMS = 1024


@dataclass
class Coordinates:
    """The change of variables between standardised ``theta`` and original (W, b).

    ``theta`` is ``[V.ravel(), b']`` with V (d, K); ``T`` is the (d+1) square
    map of one class's (v, b') to (w, b), so theta_orig = (T kron I_K) theta.
    """

    mean: np.ndarray
    scale: np.ndarray
    K: int
    fit_intercept: bool = True

    @property
    def d(self) -> int:
        return len(self.mean)

    def T(self) -> np.ndarray:
        d = self.d
        T = np.zeros((d + 1, d + 1))
        T[np.arange(d), np.arange(d)] = 1.0 / self.scale
        T[d, :d] = -self.mean / self.scale
        T[d, d] = 1.0
        return T

    def to_original(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, K = self.d, self.K
        V = theta[:d * K].reshape(d, K)
        W = V / self.scale[:, None]
        b = theta[d * K:] - self.mean @ W
        return W, b

    def from_original(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        V = W * self.scale[:, None]
        return np.concatenate([V.ravel(), b + self.mean @ W])

    def gradient(self, gW: np.ndarray, gb: np.ndarray) -> np.ndarray:
        """d/dtheta of a function whose gradient in (W, b) is (gW, gb)."""
        gV = (gW + self.mean[:, None] * (-gb)[None, :]) / self.scale[:, None]
        g = np.concatenate([gV.ravel(), gb])
        if not self.fit_intercept:
            g[self.d * self.K:] = 0.0
        return g

    def hessian(self, H: np.ndarray) -> np.ndarray:
        """The Hessian in theta of one whose Hessian in original (j*K + k ordered) params is H."""
        d1, K = self.d + 1, self.K
        T = self.T()
        H4 = H.reshape(d1, K, d1, K)
        with one_blas_thread():
            out = np.einsum("ja,jkil,ib->akbl", T, H4, T, optimize=True).reshape(d1 * K, d1 * K)
        if not self.fit_intercept:  # b stays 0: its rows and columns are the identity
            lo = (d1 - 1) * K
            out[lo:, :] = 0.0
            out[:, lo:] = 0.0
            out[lo:, lo:] = np.eye(K)
        return out


@dataclass
class Evaluation:
    """One pass's objective at theta: value, gradient, optional Hessian (standardised), extras."""

    value: float
    grad: np.ndarray
    hess: np.ndarray | None = None
    extras: dict | None = None


@dataclass
class Outcome:
    theta: np.ndarray
    n_iter: int
    converged: bool
    evaluations: int


def newton(evaluate, theta: np.ndarray, *, tol: float, max_iter: int, K: int,
           on_pass=None) -> Outcome:
    """Damped Newton: solve H step = -g, backtrack until Armijo holds, stop on a small step.

    ``evaluate(theta, hessian=True)`` runs one pass.  Stops when a step moves no
    standardised coefficient by more than ``tol * max(1, |theta|_max)``; that
    last step is taken (Newton's error after it is of the order of its square).
    With K > 1 (softmax) the loss is flat along "add c to every class", so
    that direction gets curvature in the solve; the gradient has no part
    along it, so the step is unchanged.
    """
    ev = evaluate(theta, hessian=True)
    evaluations = 1
    for it in range(max_iter):
        H = _regularised_solve_matrix(ev.hess, K)
        step = _solve(H, -ev.grad)
        if np.max(np.abs(step)) <= tol * max(1.0, np.max(np.abs(theta))):
            return Outcome(theta + step, it + 1, True, evaluations)
        slope = float(ev.grad @ step)
        t = 1.0
        for _ in range(30):
            trial = evaluate(theta + t * step, hessian=True)
            evaluations += 1
            if np.isfinite(trial.value) and trial.value <= ev.value + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            return Outcome(theta, it + 1, False, evaluations)  # no descent left: at float precision
        theta, ev = theta + t * step, trial
        if on_pass is not None:
            on_pass(it, ev)
    return Outcome(theta, max_iter, False, evaluations)


def _regularised_solve_matrix(H: np.ndarray, K: int) -> np.ndarray:
    if K == 1:
        return H
    n = H.shape[0] // K
    c = max(float(np.trace(H)) / H.shape[0], 1e-12)
    return H + np.kron(np.eye(n), np.full((K, K), c / K))


def _solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    from scipy.linalg import LinAlgError, cho_factor, cho_solve
    with one_blas_thread():
        try:
            return cho_solve(cho_factor(H), g)
        except (LinAlgError, np.linalg.LinAlgError):  # singular (unpenalised, separable): least squares
            return np.linalg.lstsq(H, g, rcond=None)[0]


@contextmanager
def one_blas_thread():
    """The driver's algebra on one BLAS thread: on a busy host a threaded solve of a few hundred
    unknowns was measured 20-50x slower than a single-threaded one (threads spin for cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def lbfgs(evaluate, theta: np.ndarray, *, tol: float, max_iter: int, on_pass=None) -> Outcome:
    """scipy's L-BFGS-B driving one pass per function evaluation; stops when max |grad| <= tol."""
    from scipy.optimize import minimize
    count = [0]

    def fun(x):
        ev = evaluate(x, hessian=False)
        count[0] += 1
        if on_pass is not None:
            on_pass(count[0] - 1, ev)
        return ev.value, ev.grad

    res = minimize(fun, theta, jac=True, method="L-BFGS-B",
                   options={"gtol": tol, "ftol": 64 * np.finfo(float).eps, "maxiter": max_iter,
                            "maxfun": 4 * max_iter, "maxcor": 20})
    return Outcome(res.x, int(res.nit), bool(res.success), count[0])


def standardiser(data, runner, center: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Column means and deviations from one moments pass (dense); zeros and ones for sparse data.

    Constant columns get deviation 1, so they stay put instead of dividing by 0.
    """
    from .preprocess import moments
    d = data.n_features
    if data.sparse:
        return np.zeros(d), np.ones(d)
    _, mean, var = moments(data, runner)
    scale = np.sqrt(var)
    scale[~(scale > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0
    return (mean if center else np.zeros(d)), scale


def warn_unconverged(model, what: str, max_iter: int, tol: float) -> None:
    """The warning a solver gives when it stops at its cap short of its tolerance."""
    warnings.warn(f"{type(model).__name__}: {what} stopped at max_iter={max_iter} before meeting "
                  f"tol={tol:g}; raise max_iter, or scale the data", ConvergenceWarning, stacklevel=4)


# ---------------------------------------------------------------- SVRG (the default SGD, models.sgd)

def svrg_step_size(sq_mean: float, lam: float | None, n: int, batch: int, K: int) -> float:
    """The step of variance-reduced SGD on standardised rows: ``1 / L(batch)``.

    Per row the logistic loss is ``L_i``-smooth with ``L_i = c * ||z_i||²``
    (``z_i`` the standardised row with a 1 for the intercept; c = 1/4 for the
    sigmoid, 1/2 for softmax).  One row per step uses the mean ``L = c * mean
    ||z_i||²``; a mini-batch of ``batch`` rows the expected smoothness of
    sampling without replacement (Gower et al., "SGD: general analysis and
    improved rates", ICML 2019): ``n(B-1)/(B(n-1)) L_full + (n-B)/(B(n-1)) L``,
    with ``L_full <= c * lam`` (``lam`` an upper bound of the largest
    eigenvalue of the rows' mean Gram matrix; the trace bound when None).
    The log loss's gradient is bounded (|p - y| <= 1) and the penalty is
    applied by its proximal step, so no step size makes the iterates grow
    without bound; this one keeps the variance-reduced steps contracting.
    """
    c = 0.5 if K > 1 else 0.25
    L = c * max(sq_mean, 1e-12)
    if batch > 1 and n > 1:
        L_full = c * (sq_mean if lam is None else min(lam, sq_mean))
        L = n * (batch - 1) / (batch * (n - 1)) * L_full + (n - batch) / (batch * (n - 1)) * L
    return 1.0 / L


def svrg_epochs(Z, yi, theta, snap, mu, *, eta, alpha_j, batch, epochs, rng, K, fit_b, l1=False):
    """Variance-reduced proximal SGD (Prox-SVRG, Xiao & Zhang 2014) over rows Z from ``theta``.

    Each step on mini-batch S moves along ``g_S(theta) - g_S(snap) + mu``
    (``mu`` the full mean loss gradient at ``snap``): an unbiased gradient
    whose variance vanishes as theta and snap approach the optimum, so the
    iterates converge to it instead of hovering.  The L2 penalty (per
    coordinate ``alpha_j``, the original-units penalty in standardised units)
    is applied by its proximal step, ``v / (1 + eta * alpha_j)``, which is
    stable for any strength (L1, ``l1=True``: the soft threshold at
    ``eta * alpha_j``).  Returns the last iterate.
    """
    from ._logistic import softmax_stats
    d = Z.shape[1]
    multinomial = K > 1
    V, b = theta[:d * K].reshape(d, K).copy(), theta[d * K:].copy()
    sV, sb = snap[:d * K].reshape(d, K), snap[d * K:]
    muV, mub = mu[:d * K].reshape(d, K), mu[d * K:]
    shrink = 1.0 / (1.0 + eta * alpha_j)[:, None]
    cut = (eta * alpha_j)[:, None]
    for _ in range(epochs):
        order = rng.permutation(Z.shape[0])
        for lo in range(0, len(order), batch):
            idx = order[lo:lo + batch]
            Zb, yb, m = Z[idx], yi[idx], len(idx)
            _, g1V, g1b, _ = softmax_stats(Zb, yb, V, b, multinomial)
            _, g0V, g0b, _ = softmax_stats(Zb, yb, sV, sb, multinomial)
            V = V - eta * ((g1V - g0V) / m + muV)
            V = np.sign(V) * np.maximum(np.abs(V) - cut, 0.0) if l1 else V * shrink
            if fit_b:
                b = b - eta * ((g1b - g0b) / m + mub)
    return np.concatenate([V.ravel(), b])


def block_gram_bound(Z) -> float:
    """The largest eigenvalue of a block's mean Gram matrix of [z, 1] rows (for the batch step)."""
    Z1 = np.hstack([Z, np.ones((Z.shape[0], 1))])
    with one_blas_thread():
        return float(np.linalg.eigvalsh(Z1.T @ Z1 / max(1, Z.shape[0]))[-1])
