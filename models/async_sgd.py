"""Asynchronous SGD: tasks pull weights from a parameter holder and push gradients, no barrier.

The fit starts ``models.param_server`` as a child process (loopback ZeroMQ,
mapred's typed wire messages), and kills it by pid in ``finally`` — it never
outlives the fit.  Each pass is one map job: every task walks its cached block
in seeded mini-batches; for each it computes the gradient at the weights it
holds, pushes the gradient sum and gets the holder's current weights back (one
round trip per step).  The holder applies a push only when at most
``max_staleness`` other updates landed since the weights it was computed from;
staleness seen (mean, max, histogram, rejected pushes) lands in
``model.staleness_``.  Map emits the block's ``[loss sum, correct, rows]``;
reduce adds them for the pass's history.

Tasks never block one another within a pass; passes are the only barrier
(they give the per-pass history and early stopping).  Runs are reproducible
in their mini-batch order but not bit-for-bit: that is what asynchrony is.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np

import mapred
from mapred.errors import ModelError

from ._common import seeded_rng, sum_job, unpack
from .param_server import decode, encode

TIMEOUT_MS = 30000


class HolderClient:
    """A REQ socket to the parameter holder; each call is one request and one reply."""

    def __init__(self, address: str, shape_w, shape_b) -> None:
        import zmq

        self._ctx = zmq.Context.instance()
        self.sock = mapred.make_socket(self._ctx, zmq.REQ)      # CURVE when a cluster secret is set
        self.sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
        self.sock.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
        self.sock.connect(address)
        self.address, self.shape_w, self.shape_b = address, tuple(shape_w), tuple(shape_b)

    def call(self, msg, *arrays):
        """Send one request and wait for its reply; a refusal or a silent holder is a ``ModelError``."""
        import zmq
        try:
            self.sock.send_multipart(encode(msg, *arrays))
            reply, data = decode(self.sock.recv_multipart())
        except zmq.Again:
            raise ModelError(f"parameter holder at {self.address} did not answer "
                             f"{msg.TYPE!r} within {TIMEOUT_MS} ms") from None
        if isinstance(reply, mapred.wire.Error):
            raise ModelError(f"parameter holder refused {msg.TYPE!r}: {reply.message}")
        return reply, data

    def weights(self, reply_data: list) -> tuple[np.ndarray, np.ndarray]:
        """The (W, b) arrays of a ``ps.weights`` reply's raw frames."""
        W = np.frombuffer(reply_data[0], dtype=np.float64).reshape(self.shape_w)
        b = np.frombuffer(reply_data[1], dtype=np.float64).reshape(self.shape_b)
        return W, b

    def pull(self):
        """The holder's current (version, W, b)."""
        reply, data = self.call(mapred.wire.HolderPull())
        return reply.version, *self.weights(data)

    def average(self):
        """The holder's running average of its weights (its current weights before averaging)."""
        return self.weights(self.call(mapred.wire.HolderAverage())[1])

    def push(self, version: int, rows: int, gW, gb):
        """Push one gradient sum; returns (new version, accepted, W, b) from the reply."""
        reply, frames = self.call(mapred.wire.HolderPush(base=version, n=rows), gW, gb)
        return reply.version, reply.accepted, *self.weights(frames)

    def close(self) -> None:
        """Close the socket at once (linger 0)."""
        self.sock.close(0)


def start_holder(host: str = "127.0.0.1") -> tuple[subprocess.Popen, str]:
    """Start the parameter holder process on ``host``; return it and its address (from its first line).

    Workers on other hosts need ``host`` to be an address they can reach (and
    a cluster secret, without which a non-loopback bind is refused).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "models.param_server", host], stdout=subprocess.PIPE,
                            env=env, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait()
        raise ModelError(f"parameter holder did not start (said {line!r})")
    return proc, f"tcp://{host}:{int(line.split()[1])}"


@contextmanager
def holder_session(model, shape_w, shape_b, **init):
    """A started and initialised holder for one fit: yields (client, address).

    On the way out (success or not) the staleness statistics land in
    ``model.staleness_`` when the holder still answers, the holder is told to
    stop, and its process is killed by pid whatever happened.
    """
    proc, address = start_holder(getattr(model, "holder_host", "127.0.0.1") or "127.0.0.1")
    client = None
    try:
        client = HolderClient(address, shape_w, shape_b)
        W0, b0 = init.pop("W"), init.pop("b")
        extra = [init.pop("penalty_j")] if "penalty_j" in init else []
        client.call(mapred.wire.HolderInit(shape_w=list(shape_w), shape_b=list(shape_b),
                                           max_staleness=model.max_staleness, **init), W0, b0, *extra)
        yield client, address
        _record_staleness(model, client)
        client.call(mapred.wire.HolderStop())
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            os.kill(proc.pid, 9)
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def _record_staleness(model, client: HolderClient) -> None:
    stats, _ = client.call(mapred.wire.HolderStatsRequest())
    model.staleness_ = {"mean": stats.mean, "max": stats.max, "accepted": stats.accepted,
                        "rejected": stats.rejected, "max_staleness": model.max_staleness,
                        "histogram": {int(k): int(v) for k, v in stats.histogram.items()}}


def push_minibatches(client: HolderClient, order, batch: int, gradient) -> int:
    """Walk ``order`` in mini-batches against the holder; return the rejected pushes.

    ``gradient(idx, W, b)`` gives the (gW, gb) sums of rows ``idx`` at the
    weights the task holds; every reply brings the holder's newest weights.
    """
    version, W, b = client.pull()
    rejected = 0
    for lo in range(0, len(order), batch):
        idx = order[lo:lo + batch]
        gW, gb = gradient(idx, W, b)
        version, accepted, W, b = client.push(version, len(idx), gW, gb)
        rejected += 0 if accepted else 1
    mapred.counter("async_sgd", "rejected_pushes", rejected)
    return rejected


def _pass_job(model, address, shape, data, step):
    """One pass of plain async SGD: every task runs its block's mini-batches against the holder."""
    from ._logistic import softmax_stats
    d, K = shape
    classes, sparse, multinomial = model.classes_, data.sparse, K > 1
    batch, seed = model._batch(data.num_rows), model.seed

    def stat(block):
        X, y = unpack(block, sparse, d)
        yi = np.searchsorted(classes, y)
        client = HolderClient(address, (d, K), (K,))
        seen = [0.0, 0]          # the loss and correct count of each mini-batch before its step

        def gradient(idx, W, b):
            idx = np.sort(idx)
            loss, gW, gb, c = softmax_stats(X[idx], yi[idx], W, b, multinomial)
            seen[0] += loss
            seen[1] += c
            return gW, gb
        try:
            order = seeded_rng(seed, step, mapred.context().split.start).permutation(len(yi))
            push_minibatches(client, order, batch, gradient)
        finally:
            client.close()
        return np.array([seen[0], seen[1], len(yi)])

    return sum_job(stat, f"logreg.async.{step}")


def fit_async(model, data, n, W, b, runner, valid):
    """Train ``model`` (a LogisticRegression) by asynchronous SGD; return the final (W, b)."""
    from ._logistic import PassMonitor
    from .sgd import lr_at
    with holder_session(model, W.shape, b.shape, W=W, b=b, lr=model._lr(), alpha=model._alpha(n),
                        penalty=model.penalty or "none") as (client, address):
        monitor = PassMonitor(model, runner, valid)
        for step in range(model.epochs):
            started = time.perf_counter()
            client.call(mapred.wire.HolderConfig(lr=lr_at(model, step)))
            v = runner.run_sum(_pass_job(model, address, W.shape, data, step), data.ds)
            _, W, b = client.pull()
            if monitor.after_pass(step, started, W, b, v[0] / v[2], v[1] / v[2]):
                break
    return monitor.result(W, b)


# ---------------------------------------------------------------- adaptive (the default schedule)


def _adaptive_pass_job(model, address, d, K, data, step, alpha_j, batch, bc):
    """One pass: every task measures the holder's averaged model on its block, then pushes
    gradients of standardised mini-batches (penalty included) for the holder's Adam/AdaGrad."""
    from ._logistic import softmax_stats
    classes, sparse, multinomial = model.classes_, data.sparse, K > 1
    seed, fit_b = model.seed, model.fit_intercept

    def stat(block):
        X, y = unpack(block, sparse, d)
        yi = np.searchsorted(classes, y)
        p = bc.value
        Z = (np.asarray(X.toarray() if sparse else X, dtype=np.float64) - p["mean"]) / p["scale"]
        client = HolderClient(address, (d, K), (K,))

        def gradient(idx, V, b):
            _, gV, gb, _ = softmax_stats(Z[idx], yi[idx], V, b, multinomial)
            gV = gV + len(idx) * alpha_j[:, None] * V  # the push carries sums: the penalty times m
            return gV, (gb if fit_b else 0.0 * gb)
        try:
            Va, ba = client.average()
            avg_loss, _, _, avg_correct = softmax_stats(Z, yi, Va, ba, multinomial)
            order = seeded_rng(seed, step, mapred.context().split.start).permutation(len(yi))
            push_minibatches(client, order, batch, gradient)
        finally:
            client.close()
        return np.array([avg_loss, avg_correct, len(yi)])

    return sum_job(stat, f"logreg.async.{model.lr_schedule}.{step}")


def fit_async_adaptive(model, data, n, K, runner, valid):
    """Asynchronous SGD with the sync default's recipe: the holder runs Adam (or AdaGrad) on
    internally standardised coordinates and keeps the running average of its weights from the
    second pass on; early stopping watches the averaged model's training (or validation) loss."""
    from ._logistic import EarlyStop, record_pass
    from .optim import Coordinates, standardiser, warn_unconverged
    d = data.n_features
    mean, scale = standardiser(data, runner, center=model.fit_intercept)
    coords = Coordinates(mean, scale, K, model.fit_intercept)
    alpha = model._alpha(n)
    alpha_j = alpha / scale ** 2
    batch, tol = model._batch(n), (1e-4 if model.tol is None else float(model.tol))
    bc = mapred.broadcast({"mean": mean, "scale": scale})
    stopper = EarlyStop(tol, model.n_iter_no_change)
    model.n_iter_ = model.epochs
    with holder_session(model, (d, K), (K,), W=np.zeros((d, K)), b=np.zeros(K), lr=model._lr(),
                        alpha=0.0, penalty="none", optimizer=model.lr_schedule) as (client, address):
        for step in range(model.epochs):
            started = time.perf_counter()
            client.call(mapred.wire.HolderConfig(lr=model._lr(), average=step >= 1))
            Vp, bp = client.average()
            v = runner.run_sum(_adaptive_pass_job(model, address, d, K, data, step, alpha_j, batch, bc),
                               data.ds)
            W, b = coords.to_original(np.concatenate([Vp.ravel(), bp]))  # the model v measured
            loss = v[0] / v[2] + 0.5 * alpha * float((W * W).sum())
            Va, ba = client.average()
            Wa, ba_ = coords.to_original(np.concatenate([Va.ravel(), ba]))
            watched = record_pass(model, runner, valid, step, started, loss, v[1] / v[2], Wa, ba_)
            if not np.isfinite(watched) or not np.isfinite(Wa).all():
                raise ModelError(f"training diverged at pass {step}: loss is {watched}; lower lr")
            if stopper.update(step, watched, (Wa, ba_) if valid is not None else (W, b)):
                model.n_iter_ = step + 1
                break
        else:
            warn_unconverged(model, "async SGD", model.epochs, tol)
    if valid is None or stopper.best is None:
        return Wa, ba_
    return stopper.best



# ---------------------------------------------------------------- SVRG (the default)


def fit_async_svrg(model, data, n, K, runner, valid, *, state=None, theta=None, epochs=None):
    """Asynchronous SVRG (Reddi et al., "On variance reduction in stochastic gradient descent
    and its asynchronous variants", NIPS 2015) with the sync default's snapshot pass.

    Every outer iteration: the snapshot pass (``models.sgd``: exact objective
    and full gradient ``mu`` at the holder's weights, by map/reduce), the same
    stopping rule as sync SVRG, then one asynchronous pass: every task walks its
    block once and pushes, per mini-batch, the variance-reduced gradient
    ``g_S(w) - g_S(snapshot) + mu`` at the weights it last received; the holder
    ("prox" optimizer) takes a plain step with it and the penalty's proximal
    step per coordinate.  The holder so makes one step per row per pass, the
    progress of one sequential epoch.  ``state``/``theta`` continue a fit.
    """
    from .optim import warn_unconverged
    from .sgd import svrg_result, svrg_setup, svrg_snapshot
    d = data.n_features
    state, theta, batch, tol, epochs, stopper = svrg_setup(model, data, runner, n, K, state, theta, epochs)
    base = len(runner.history)
    converged = False
    with holder_session(model, (d, K), (K,), W=theta[:d * K].reshape(d, K), b=theta[d * K:],
                        lr=1.0, alpha=0.0, penalty="l1" if state.l1 else "l2", optimizer="prox",
                        penalty_j=state.alpha_j) as (client, address):
        for it in range(epochs):
            mu, stop = svrg_snapshot(model, runner, data, state, theta, d, K, base + it, batch, n, tol,
                                     valid, stopper, it)
            if stop:
                converged = stop == "converged"
                break
            client.call(mapred.wire.HolderConfig(lr=state.eta))
            runner.run_sum(_svrg_async_pass_job(model, address, theta, mu, state, d, K, data,
                                                base + it, batch), data.ds)
            _, Vh, bh = client.pull()
            theta = np.concatenate([Vh.ravel(), bh])
        else:
            if valid is None and epochs == model.epochs:
                warn_unconverged(model, "async SGD (SVRG)", epochs, tol)
    return svrg_result(model, state, theta, valid, stopper, converged)


def _svrg_async_pass_job(model, address, theta, mu, state, d, K, data, step, batch):
    """Map: walk the block once, pushing variance-reduced gradient sums to the holder."""
    from ._logistic import softmax_stats
    classes, sparse, multinomial = model.classes_, data.sparse, K > 1
    seed, fit_b = model.seed, model.fit_intercept
    bc = mapred.broadcast({"theta": theta, "mu": mu, "mean": state.mean, "scale": state.scale})

    def stat(block):
        p = bc.value
        X, y = unpack(block, sparse, d)
        yi = np.searchsorted(classes, y)
        Z = (np.asarray(X.toarray() if sparse else X, dtype=np.float64) - p["mean"]) / p["scale"]
        sV, sb = p["theta"][:d * K].reshape(d, K), p["theta"][d * K:]
        muV, mub = p["mu"][:d * K].reshape(d, K), p["mu"][d * K:]
        client = HolderClient(address, (d, K), (K,))

        def gradient(idx, V, b):
            _, g1V, g1b, _ = softmax_stats(Z[idx], yi[idx], V, b, multinomial)
            _, g0V, g0b, _ = softmax_stats(Z[idx], yi[idx], sV, sb, multinomial)
            m = len(idx)
            gb = g1b - g0b + m * mub
            return g1V - g0V + m * muV, (gb if fit_b else 0.0 * gb)
        try:
            order = seeded_rng(seed, step, mapred.context().split.start).permutation(len(yi))
            push_minibatches(client, order, batch, gradient)
        finally:
            client.close()
        return np.array([len(yi)], dtype=np.float64)

    return sum_job(stat, f"logreg.async.svrg.{step}")
