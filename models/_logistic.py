"""Logistic loss on one block: value, gradient, Hessian; the per-pass monitor the iterative solvers share.

Kept apart from ``models.linear`` so that the SGD and asynchronous-SGD solvers
(``models.sgd``, ``models.async_sgd``) can use these without importing the
estimator classes (no import cycle).
"""
from __future__ import annotations

import numpy as np

from mapred.errors import ModelError

from ._common import check_finite_loss


def softmax_stats(X, yi, W, b, multinomial: bool):
    """Per-block loss sum, gradient sums and correct count of (multinomial) logistic loss.

    ``W`` is (d, K) with K = 1 for binary (sigmoid) and K = classes for softmax;
    ``yi`` are class indices.  Works on dense arrays and scipy CSR blocks alike.
    """
    low = X.dtype == np.float32  # float32 data: multiply in float32, never copy the block to float64
    Z = np.asarray(X @ (W.astype(np.float32) if low else W), dtype=np.float64) + b
    if multinomial:
        Z = Z - Z.max(axis=1, keepdims=True)
        expZ = np.exp(Z)
        norm = expZ.sum(axis=1, keepdims=True)
        P = expZ / norm
        rows = np.arange(len(yi))
        loss = float(np.sum(np.log(norm[:, 0]) - Z[rows, yi]))
        G = P
        G[rows, yi] -= 1.0
        correct = int(np.sum(np.argmax(Z, axis=1) == yi))
    else:
        z = Z[:, 0]
        t = yi.astype(np.float64)
        loss = float(np.sum(np.logaddexp(0.0, z) - t * z))
        G = (_sigmoid(z) - t)[:, None]
        correct = int(np.sum((z > 0) == (yi == 1)))
    gW = np.asarray(X.T @ (G.astype(np.float32) if low else G), dtype=np.float64)
    return loss, gW, G.sum(axis=0), correct


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def prox_step(W, lr, alpha, penalty):
    """The regulariser's step after a gradient step: L2 shrink or L1 soft-threshold (proximal)."""
    if penalty == "l2" and alpha:
        return W / (1.0 + lr * alpha)
    if penalty == "l1" and alpha:
        return np.sign(W) * np.maximum(np.abs(W) - lr * alpha, 0.0)
    return W


def sgd_block(X, yi, W, b, *, lr, alpha, penalty, batch_size, rng, multinomial):
    """Mini-batch SGD over one block from (W, b): one local epoch in a seeded order.

    Returns (W, b, loss sum, correct count) with the loss measured on each
    mini-batch before its step (the usual running training loss).
    """
    order = rng.permutation(X.shape[0])
    loss_sum, correct = 0.0, 0
    for lo in range(0, len(order), batch_size):
        idx = np.sort(order[lo:lo + batch_size])
        loss, gW, gb, c = softmax_stats(X[idx], yi[idx], W, b, multinomial)
        m = len(idx)
        W = prox_step(W - lr * gW / m, lr, alpha, penalty)
        b = b - lr * gb / m
        loss_sum += loss
        correct += c
    return W, b, loss_sum, correct


class PassMonitor:
    """What every logistic pass ends with: divergence check, validation, early stopping, history.

    Keeps the weights of the best validation loss; ``after_pass`` returns True
    when ``n_iter_no_change`` passes in a row did not improve it by ``tol``.
    """

    def __init__(self, model, runner, valid) -> None:
        self.model, self.runner, self.valid = model, runner, valid
        self.best, self.best_loss, self.waited = None, np.inf, 0

    def after_pass(self, step: int, started: float, W, b, loss: float, acc: float) -> bool:
        """Check, validate and record one pass; True when early stopping says stop."""
        model = self.model
        check_finite_loss(loss, step)
        if loss > model._loss_limit() or not np.isfinite(W).all():
            raise ModelError(f"training diverged at pass {step}: loss {loss:.3g} is over 10x "
                             f"the constant guess's; lower lr={model._lr()}")
        entry = {"loss": loss, "accuracy": acc}
        if self.valid is not None:
            records = self.runner.last_records  # the history counts training records only
            vloss, vacc = model._loss_on(self.valid, W, b, self.runner)
            self.runner.last_records = records
            entry.update(val_loss=vloss, val_accuracy=vacc)
            if vloss < self.best_loss - (1e-6 if model.tol is None else model.tol):
                self.best, self.best_loss, self.waited = (W.copy(), b.copy()), vloss, 0
            else:
                self.waited += 1
        self.runner.record(step, started, **entry)
        return self.valid is not None and self.waited >= model.n_iter_no_change

    def result(self, W, b):
        """The best-validation weights when validating, else the last ones."""
        return self.best if self.best is not None else (W.copy(), b.copy())


def record_pass(model, runner, valid, step, started, loss, accuracy, Wa, ba) -> float:
    """Record one pass in the history; return the loss early stopping watches (validation's if any)."""
    entry, watched = {"loss": loss, "accuracy": accuracy}, loss
    if valid is not None:
        records = runner.last_records      # the history counts training records only
        watched, vacc = model._loss_on(valid, Wa, ba, runner)
        runner.last_records = records
        entry.update(val_loss=watched, val_accuracy=vacc)
    runner.record(step, started, **entry)
    return watched


class EarlyStop:
    """Stop when the watched loss has not improved by ``tol`` (relative) in ``patience`` passes.

    The first pass (before averaging starts) never counts; ``best`` keeps the
    candidate of the best loss seen.
    """

    def __init__(self, tol: float, patience: int) -> None:
        self.tol, self.patience = tol, patience
        self.best, self.best_loss, self.waited = None, np.inf, 0

    def update(self, step: int, watched: float, candidate) -> bool:
        if step == 0:
            return False
        if self.best is None or watched < self.best_loss - self.tol * max(1.0, abs(self.best_loss)):
            self.best, self.best_loss, self.waited = candidate, watched, 0
            return False
        self.waited += 1
        return self.waited >= self.patience


def logistic_hessian(X, W, b, multinomial: bool) -> np.ndarray:
    """The block's Hessian sum of the logistic loss in (W, b), parameters ordered j*K + k.

    X is augmented with a ones column (the intercept is parameter row d).
    Binary: X1' diag(p(1-p)) X1.  Softmax: for classes k, l the (k, l) block
    is X1' diag(p_k (delta_kl - p_l)) X1, built as one product of the
    (n, (d+1)K) matrix of x_i kron p_i plus a diagonal block per class.
    """
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)  # sparse: small d only
    n = X.shape[0]
    X1 = np.hstack([X, np.ones((n, 1))])
    Z = X @ W + b
    if not multinomial:
        p = _sigmoid(Z[:, 0])
        return X1.T @ (X1 * (p * (1.0 - p))[:, None])
    Z = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(Z)
    P /= P.sum(axis=1, keepdims=True)
    d1, K = X1.shape[1], P.shape[1]
    A = (X1[:, :, None] * P[:, None, :]).reshape(n, d1 * K)
    H = -(A.T @ A)
    H4 = H.reshape(d1, K, d1, K)
    for k in range(K):
        H4[:, k, :, k] += X1.T @ (X1 * P[:, k:k + 1])
    return H
