"""Synchronous solvers of logistic regression: full-batch gradient descent and parameter-mixing SGD.

- ``solver="gd"``: map emits the block's gradient sum at the broadcast weights;
  the driver takes one heavy-ball step and the proximal step of the penalty
  (L2 shrink or L1 soft-threshold) per pass.
- ``solver="sgd"`` (default ``lr_schedule="svrg"``, ``fit_svrg``): SVRG, a
  snapshot pass (full gradient in summation form) then an epoch pass in which
  every task runs variance-reduced steps from the snapshot; the driver mixes
  (averages) the tasks' iterates.  ``lr_schedule="adam"``/``"adagrad"``
  (``fit_adaptive``) and plain SGD (``fit_sync``) use the same parameter
  mixing: map emits the row-weighted final weights; reduce adds; the driver
  divides by the rows.
"""
from __future__ import annotations

import time

import numpy as np

import mapred
from mapred.errors import ModelError

from ._common import Data, seeded_rng, sum_job, unpack
from ._logistic import (
    EarlyStop,
    PassMonitor,
    prox_step,
    record_pass,
    sgd_block,
    softmax_stats,
)
from .optim import svrg_step_size, warn_unconverged


def fit_sync(model, data: Data, n: int, W, b, runner, valid):
    """GD or parameter-mixing SGD: one job per pass, weights broadcast, early stopping."""
    monitor = PassMonitor(model, runner, valid)
    prev = np.inf
    velocity = (np.zeros_like(W), np.zeros_like(b))
    alpha = model._alpha(n)
    tol = 1e-6 if model.tol is None else float(model.tol)
    model.n_iter_ = model.epochs
    for step in range(model.epochs):
        started = time.perf_counter()
        bc = mapred.broadcast(np.concatenate([W.ravel(), b]))
        v = runner.run_sum(_pass_job(model, bc, W.shape, data, step, alpha), data.ds)
        W, b, loss, acc, velocity = _apply(model, v, W, b, step, alpha, velocity)
        if monitor.after_pass(step, started, W, b, loss, acc):
            model.n_iter_ = step + 1
            break
        if valid is None and model.solver == "gd" and abs(prev - loss) <= tol * max(1.0, loss):
            model.n_iter_ = step + 1
            break
        prev = loss
    else:
        if model.solver == "gd" and valid is None:
            warn_unconverged(model, "gradient descent", model.epochs, tol)
    return monitor.result(W, b)


def lr_at(model, step: int) -> float:
    """The learning rate of a pass: constant for gd, ``lr / (1 + step)^power_t`` for invscaling."""
    if model.lr_schedule == "constant" or model.solver == "gd":
        return model._lr()
    return model._lr() / (1.0 + step) ** model.power_t


def _pass_job(model, bc, shape, data: Data, step: int, alpha: float):
    d, K = shape
    multinomial = K > 1
    classes, sparse = model.classes_, data.sparse
    lr, penalty = lr_at(model, step), model.penalty
    batch, seed, solver, fit_b = model._batch(data.num_rows), model.seed, model.solver, model.fit_intercept

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

    return sum_job(stat, f"logreg.{solver}.{step}")


def _apply(model, v, W, b, step, alpha, velocity):
    """Turn one pass's sums into new weights, mean loss and accuracy."""
    d, K = W.shape
    loss, correct, m = v[-3], v[-2], v[-1]
    if model.solver == "gd":  # heavy-ball step on the exact full gradient, then the prox step
        lr, mu = lr_at(model, step), model.momentum
        vW = mu * velocity[0] - lr * v[:d * K].reshape(d, K) / m
        vb = mu * velocity[1] - lr * v[d * K:d * K + K] / m
        W_new = prox_step(W + vW, lr, alpha, model.penalty)
        velocity = (W_new - W, vb)
        W, b = W_new, b + vb
    else:
        W, b = v[:d * K].reshape(d, K) / m, v[d * K:d * K + K] / m
    mean_loss = loss / m + (0.5 * alpha * float((W * W).sum()) if model.penalty == "l2" else 0.0)
    return W, b, mean_loss, correct / m, velocity


# ---------------------------------------------------------------- adaptive SGD (the default schedule)

ADAPTIVE = ("adam", "adagrad")


def auto_batch(n: int) -> int:
    """Mini-batch size for ``batch_size="auto"``: 16 rows on small data, up to 256 on large."""
    return int(min(256, max(16, n // 2000)))


def adaptive_step(state: dict, gV, gb, lr: float, schedule: str):
    """One Adam (beta 0.9 / 0.999) or AdaGrad step of (V, b) in place in ``state``.

    Both scale each coordinate's step by its gradients' history, so no step
    exceeds about ``lr`` in standardised units whatever the data's scale: the
    bound that keeps SGD from diverging on raw features.
    """
    state["t"] += 1
    if schedule == "adagrad":
        state["sV"] += gV * gV
        state["sb"] += gb * gb
        state["V"] -= lr * gV / (np.sqrt(state["sV"]) + 1e-8)
        state["b"] -= lr * gb / (np.sqrt(state["sb"]) + 1e-8)
        return
    t = state["t"]
    for x, g, m, v in (("V", gV, "mV", "sV"), ("b", gb, "mb", "sb")):
        state[m] = 0.9 * state[m] + 0.1 * g
        state[v] = 0.999 * state[v] + 0.001 * g * g
        state[x] = state[x] - lr * (state[m] / (1 - 0.9 ** t)) / (np.sqrt(state[v] / (1 - 0.999 ** t)) + 1e-8)


STATE_KEYS = ("V", "b", "mV", "mb", "sV", "sb")


def new_state(d: int, K: int) -> dict:
    state = {k: np.zeros((d, K)) if k.endswith("V") else np.zeros(K) for k in STATE_KEYS}
    state["t"] = 0
    return state


def adaptive_epoch(Z, yi, state: dict, *, lr, alpha_j, batch, rng, multinomial, schedule, fit_b):
    """One local epoch of adaptive mini-batch SGD on standardised rows Z; returns the mean iterate.

    The L2 penalty enters the gradient per coordinate (``alpha_j`` = alpha / s_j²,
    the original-units penalty seen in standardised units).
    """
    order = rng.permutation(Z.shape[0])
    sum_V, sum_b, steps = np.zeros_like(state["V"]), np.zeros_like(state["b"]), 0
    for lo in range(0, len(order), batch):
        idx = order[lo:lo + batch]
        _, gV, gb, _ = softmax_stats(Z[idx], yi[idx], state["V"], state["b"], multinomial)
        m = len(idx)
        gV = gV / m + alpha_j[:, None] * state["V"]
        gb = gb / m if fit_b else 0.0 * gb
        adaptive_step(state, gV, gb, lr, schedule)
        sum_V += state["V"]
        sum_b += state["b"]
        steps += 1
    return sum_V / steps, sum_b / steps


def fit_adaptive(model, data: Data, n: int, K: int, runner, valid):
    """Parameter-mixing SGD with Adam/AdaGrad, internal scaling, iterate averaging, early stopping.

    Each pass: every task starts from the broadcast state (weights and the
    optimiser's moments), runs one seeded epoch over its block in standardised
    units, and emits its row-weighted final state and mean iterate, plus the
    loss of the broadcast *averaged* model on its rows.  The driver mixes the
    states and keeps a running average of the pass means from the second pass
    on (Polyak-Ruppert averaging; the first pass is the transient).  Early
    stopping: the averaged model's validation loss when ``validation`` is
    given, else its regularised training loss, must improve by ``tol``
    (relative, default 1e-4) within ``n_iter_no_change`` passes.
    """
    from .optim import Coordinates, standardiser
    d = data.n_features
    mean, scale = standardiser(data, runner, center=model.fit_intercept)
    coords = Coordinates(mean, scale, K, model.fit_intercept)
    alpha = model._alpha(n)
    alpha_j = alpha / scale ** 2
    batch = model._batch(n)
    tol = 1e-4 if model.tol is None else float(model.tol)
    state = new_state(d, K)
    avg = None
    count = 0
    stopper = EarlyStop(tol, model.n_iter_no_change)
    model.n_iter_ = model.epochs
    for step in range(model.epochs):
        started = time.perf_counter()
        avg_theta = np.zeros(d * K + K) if avg is None else avg
        bc = mapred.broadcast({"state": np.concatenate([state[k].ravel() for k in STATE_KEYS]),
                               "t": state["t"], "avg": avg_theta, "mean": mean, "scale": scale})
        v = runner.run_sum(_adaptive_job(model, bc, d, K, data, step, alpha_j, batch), data.ds)
        rows = v[-1]
        size = sum(state[k].size for k in STATE_KEYS)
        flat = v[:size] / rows
        pos = 0
        for k in STATE_KEYS:
            state[k] = flat[pos:pos + state[k].size].reshape(state[k].shape)
            pos += state[k].size
        state["t"] += int(round(v[-2] / rows))  # the tasks' mean step count
        pass_mean = v[size:size + d * K + K] / rows
        if step == 0 or avg is None:
            avg, count = pass_mean, 1
        else:
            count += 1
            avg = avg + (pass_mean - avg) / count
        # the loss the tasks measured is the previous average's: the current one's comes next pass
        W, b = coords.to_original(avg_theta)
        train_loss = v[size + d * K + K] / rows + 0.5 * alpha * float((W * W).sum())
        Wa, ba = coords.to_original(avg)
        watched = record_pass(model, runner, valid, step, started, train_loss,
                              v[size + d * K + K + 1] / rows, Wa, ba)
        if not np.isfinite(watched) or not np.isfinite(avg).all():
            raise ModelError(f"training diverged at pass {step}: loss is {watched}; lower lr={model._lr()}")
        if stopper.update(step, watched, (Wa, ba) if valid is not None else (W, b)):
            model.n_iter_ = step + 1
            break
    else:
        warn_unconverged(model, "SGD", model.epochs, tol)
    if valid is None:
        return coords.to_original(avg)  # the latest average is at least as good as the best seen
    return stopper.best if stopper.best is not None else coords.to_original(avg)


def _adaptive_job(model, bc, d: int, K: int, data: Data, step: int, alpha_j, batch: int):
    classes, sparse, multinomial = model.classes_, data.sparse, K > 1
    lr, seed, schedule, fit_b = model._lr(), model.seed, model.lr_schedule, model.fit_intercept

    def stat(block):
        X, y = unpack(block, sparse, d)
        yi = np.searchsorted(classes, y)
        p = bc.value
        Z = (np.asarray(X.toarray() if sparse else X, dtype=np.float64) - p["mean"]) / p["scale"]
        avg = p["avg"]
        loss, _, _, correct = softmax_stats(Z, yi, avg[:d * K].reshape(d, K), avg[d * K:], multinomial)
        state, pos = {"t": int(p["t"])}, 0
        for k in STATE_KEYS:
            shape = (d, K) if k.endswith("V") else (K,)
            size = int(np.prod(shape))
            state[k] = p["state"][pos:pos + size].reshape(shape).copy()
            pos += size
        t0 = state["t"]
        rng = seeded_rng(seed, step, mapred.context().split.start)
        mV, mb = adaptive_epoch(Z, yi, state, lr=lr, alpha_j=alpha_j, batch=batch, rng=rng,
                                multinomial=multinomial, schedule=schedule, fit_b=fit_b)
        m = len(yi)
        flat = np.concatenate([state[k].ravel() for k in STATE_KEYS])
        return np.concatenate([m * flat, m * mV.ravel(), m * mb, [loss, correct, m * (state["t"] - t0), m]])

    return sum_job(stat, f"logreg.sgd.{schedule}.{step}")


# ---------------------------------------------------------------- SVRG (the default SGD)

def svrg_batch(n: int) -> int:
    """Mini-batch of ``batch_size="auto"`` for SVRG: one row per step up to 10,000 rows (the
    most progress per row read), then about 5,000 steps per pass (at most 256 rows a step) so
    the per-step Python cost stays small on large data."""
    return int(min(256, max(1, n // 5000)))


def local_epochs(n: int, m: int) -> int:
    """Epochs a task runs over its block of ``m`` of ``n`` rows in one pass: about ``n`` steps'
    worth of rows (at most 8 epochs), so a pass makes the progress of one sequential epoch
    whatever the number of splits, without each task drifting to its own block's optimum."""
    return int(max(1, min(8, round(n / max(1, m)))))


class SvrgState:
    """What a fit or ``partial_fit`` by SVRG carries between passes: coordinates, penalty, step.

    The penalty in standardised units, per coordinate: L2 ``0.5 alpha (v_j / s_j)²``
    (``alpha_j = alpha / s_j²``) or L1 ``alpha |v_j| / s_j`` (``alpha_j = alpha / s_j``).
    """

    def __init__(self, coords, alpha: float, K: int, eta: float | None = None,
                 penalty: str = "l2") -> None:
        self.coords, self.K, self.eta = coords, K, eta
        self.l1 = penalty == "l1"
        self.mean, self.scale = coords.mean, coords.scale
        self.set_alpha(alpha)

    def set_alpha(self, alpha: float) -> None:
        self.alpha = alpha
        self.alpha_j = alpha / (self.scale if self.l1 else self.scale ** 2)

    def objective(self, mean_loss: float, theta) -> float:
        """The regularised objective from the mean loss at ``theta``."""
        V = theta[:len(self.scale) * self.K].reshape(-1, self.K)
        if self.l1:
            return mean_loss + float((self.alpha_j[:, None] * np.abs(V)).sum())
        return mean_loss + 0.5 * float((self.alpha_j[:, None] * V * V).sum())

    def stationarity(self, theta, mu) -> np.ndarray:
        """The regularised gradient at ``theta`` (L2), or the proximal gradient mapping (L1,
        whose penalty has no gradient at 0): zero exactly at the optimum."""
        dK = len(self.scale) * self.K
        V = theta[:dK].reshape(-1, self.K)
        if not self.l1:
            return mu + np.concatenate([(self.alpha_j[:, None] * V).ravel(), np.zeros(self.K)])
        eta = self.eta if self.eta else 1.0
        step = V - eta * mu[:dK].reshape(V.shape)
        moved = np.sign(step) * np.maximum(np.abs(step) - eta * self.alpha_j[:, None], 0.0)
        return np.concatenate([((V - moved) / eta).ravel(), mu[dK:]])


def fit_svrg(model, data: Data, n: int, K: int, runner, valid, *, state=None, theta=None,
             epochs=None):
    """Variance-reduced SGD (SVRG) over map/reduce passes; returns (W, b) in original units.

    Every outer iteration is two passes over the cached blocks:

    1. the *snapshot pass*: map emits its block's loss sum and (standardised)
       gradient sum at the broadcast snapshot, reduce adds them: the exact
       regularised objective and full gradient ``mu`` (summation form);
    2. the *epoch pass*: every task runs variance-reduced proximal steps
       (``models.optim.svrg_epochs``) over its block from the snapshot,
       ``local_epochs`` times, and emits its row-weighted last iterate; the
       driver mixes (averages) them into the next snapshot.

    Stops when the full regularised gradient's largest standardised entry is
    at most ``tol`` (default 1e-5); with ``validation`` also when the
    snapshot's validation loss has not improved by ``tol`` relative in
    ``n_iter_no_change`` iterations (the best snapshot is kept).  ``state`` and
    ``theta`` continue an earlier fit (``partial_fit``).
    """
    d = data.n_features
    state, theta, batch, tol, epochs, stopper = svrg_setup(model, data, runner, n, K, state, theta, epochs)
    P = d * K + K
    base = len(runner.history)
    converged = False
    for it in range(epochs):
        mu, stop = svrg_snapshot(model, runner, data, state, theta, d, K, base + it, batch, n, tol,
                                 valid, stopper, it)
        if stop:
            converged = stop == "converged"
            break
        v = runner.run_sum(_svrg_epoch_job(model, theta, mu, state, d, K, data, base + it, batch,
                                           n), data.ds)
        theta = v[:P] / v[P]
    else:
        if valid is None and epochs == model.epochs:
            warn_unconverged(model, "SGD (SVRG)", epochs, tol)
    return svrg_result(model, state, theta, valid, stopper, converged)


def svrg_setup(model, data: Data, runner, n: int, K: int, state, theta, epochs):
    """Where sync and async SVRG start: ``(state, theta, batch, tol, epochs, stopper)``.

    A new fit measures the standardising moments (one pass) and starts at
    zero; ``partial_fit`` passes its kept ``state`` and ``theta`` to go on
    from them. ``model.n_iter_`` starts at the pass budget (a stop lowers it).
    """
    from .optim import Coordinates, standardiser
    d = data.n_features
    if state is None:
        mean, scale = standardiser(data, runner, center=model.fit_intercept)
        state = SvrgState(Coordinates(mean, scale, K, model.fit_intercept), model._alpha(n), K,
                          penalty=model.penalty)
    theta = np.zeros(d * K + K) if theta is None else theta
    batch = svrg_batch(n) if model.batch_size == "auto" else int(model.batch_size)
    tol = 1e-5 if model.tol is None else float(model.tol)
    epochs = model.epochs if epochs is None else epochs
    model.n_iter_ = epochs
    return state, theta, batch, tol, epochs, EarlyStop(tol, model.n_iter_no_change)


def svrg_result(model, state, theta, valid, stopper, converged: bool):
    """What sync and async SVRG return: ``(W, b)`` in original units, and what ``partial_fit`` keeps.

    With ``validation`` and no convergence, the best snapshot the early stop
    saw wins over the last one (the last may be past the validation optimum).
    """
    model._svrg = (state, theta)
    if valid is not None and stopper.best is not None and not converged:
        return stopper.best
    return state.coords.to_original(theta)


def svrg_snapshot(model, runner, data: Data, state, theta, d: int, K: int, step: int, batch: int,
                  n: int, tol: float, valid, stopper, it: int):
    """One snapshot pass and the stopping rule, shared by sync and async SVRG.

    Runs ``_svrg_snapshot_job`` at ``theta`` (the exact regularised objective
    and the full standardised gradient ``mu``, summed over splits), sets the
    step size from the first pass's smoothness, refuses a non-finite loss,
    records the pass, and says whether to stop. Returns ``(mu, stop)``:
    ``stop`` is None to go on, ``"early"`` (validation loss stopped improving)
    or ``"converged"`` (the largest stationarity entry is at most ``tol``);
    ``model.n_iter_`` is set when it stops.
    """
    started = time.perf_counter()
    need_step = state.eta is None
    v = runner.run_sum(_svrg_snapshot_job(model, theta, state, d, K, data, step, need_step, batch),
                       data.ds)
    P = d * K + K
    rows = v[P + 2]
    obj = state.objective(v[0] / rows, theta)
    mu = v[1:1 + P] / rows
    if not model.fit_intercept:
        mu[d * K:] = 0.0
    if need_step:
        lam = v[P + 4] / rows if batch > 1 else None
        state.eta = (float(model.lr) if model.lr is not None
                     else svrg_step_size(v[P + 3] / rows, lam, n, batch, K))
    grad = state.stationarity(theta, mu)
    if not np.isfinite(obj) or not np.isfinite(grad).all():
        raise ModelError(f"training diverged at pass {step}: loss is {obj}")
    W, b = state.coords.to_original(theta)
    watched = record_pass(model, runner, valid, step, started, obj, v[P + 1] / rows, W, b)
    if valid is not None and stopper.update(it + 1, watched, (W, b)):
        model.n_iter_ = it + 1
        return mu, "early"
    if np.max(np.abs(grad)) <= tol:
        model.n_iter_ = it + 1
        return mu, "converged"
    return mu, None


def _standardised(block, sparse: bool, d: int, p: dict):
    X, y = unpack(block, sparse, d)
    Z = (np.asarray(X.toarray() if sparse else X, dtype=np.float64) - p["mean"]) / p["scale"]
    return Z, y


def _svrg_snapshot_job(model, theta, state, d, K, data, step, need_step, batch):
    """Map: the block's [loss, gradient sums (standardised), correct, rows(, sum ||z1||², m*lam)]."""
    from .optim import block_gram_bound
    classes, sparse, multinomial = model.classes_, data.sparse, K > 1
    bc = mapred.broadcast({"theta": theta, "mean": state.mean, "scale": state.scale})

    def stat(block):
        p = bc.value
        Z, y = _standardised(block, sparse, d, p)
        yi = np.searchsorted(classes, y)
        th = p["theta"]
        loss, gV, gb, correct = softmax_stats(Z, yi, th[:d * K].reshape(d, K), th[d * K:], multinomial)
        m = len(yi)
        parts = [[loss], gV.ravel(), gb, [correct, m]]
        if need_step:
            lam = m * block_gram_bound(Z) if batch > 1 and d <= 2000 else float(np.sum(Z * Z) + m)
            parts.append([float(np.sum(Z * Z)) + m, lam])
        return np.concatenate(parts)

    return sum_job(stat, f"logreg.svrg.snapshot.{step}")


def _svrg_epoch_job(model, theta, mu, state, d, K, data, step, batch, n):
    """Map: variance-reduced epochs over the block from the snapshot; emits [m * iterate, m]."""
    from .optim import svrg_epochs
    classes, sparse, seed, fit_b = model.classes_, data.sparse, model.seed, model.fit_intercept
    bc = mapred.broadcast({"theta": theta, "mu": mu, "mean": state.mean, "scale": state.scale,
                           "alpha_j": state.alpha_j, "eta": state.eta, "l1": state.l1})

    def stat(block):
        p = bc.value
        Z, y = _standardised(block, sparse, d, p)
        yi = np.searchsorted(classes, y)
        m = len(yi)
        rng = seeded_rng(seed, step, mapred.context().split.start)
        out = svrg_epochs(Z, yi, p["theta"], p["theta"], p["mu"], eta=p["eta"], alpha_j=p["alpha_j"],
                          batch=batch, epochs=local_epochs(n, m), rng=rng, K=K, fit_b=fit_b,
                          l1=p["l1"])
        return np.concatenate([m * out, [m]])

    return sum_job(stat, f"logreg.svrg.epoch.{step}")
