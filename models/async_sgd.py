"""Asynchronous SGD: tasks pull weights from a parameter holder and push gradients, no barrier.

The fit starts ``models.param_server`` as a child process (loopback ZeroMQ),
and kills it by pid in ``finally`` — it never outlives the fit.  Each pass is
one map job: every task walks its cached block in seeded mini-batches; for
each it computes the gradient at the weights it holds, pushes the gradient sum
and gets the holder's current weights back (one round trip per step).  The
holder applies a push only when at most ``max_staleness`` other updates landed
since the weights it was computed from; staleness seen (mean, max, histogram,
rejected pushes) lands in ``model.staleness_``.  Map emits the block's
``[loss sum, correct, rows]``; reduce adds them for the pass's history.

Tasks never block one another within a pass; passes are the only barrier
(they give the per-pass history and early stopping).  Runs are reproducible
in their mini-batch order but not bit-for-bit: that is what asynchrony is.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

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

    def call(self, header: dict, *arrays) -> tuple[dict, list]:
        """Send one request and wait for its reply; a refusal or a silent holder is a ``ModelError``."""
        import zmq
        try:
            self.sock.send_multipart(encode(header, *arrays))
            reply, data = decode(self.sock.recv_multipart())
        except zmq.Again:
            raise ModelError(f"parameter holder at {self.address} did not answer "
                             f"{header['t']!r} within {TIMEOUT_MS} ms") from None
        if reply.get("t") == "error":
            raise ModelError(f"parameter holder refused {header['t']!r}: {reply.get('message')}")
        return reply, data

    def weights(self, reply_data: list) -> tuple[np.ndarray, np.ndarray]:
        """The (W, b) arrays of a ``weights`` reply's raw frames."""
        W = np.frombuffer(reply_data[0], dtype=np.float64).reshape(self.shape_w)
        b = np.frombuffer(reply_data[1], dtype=np.float64).reshape(self.shape_b)
        return W, b

    def pull(self):
        """The holder's current (version, W, b)."""
        reply, data = self.call({"t": "pull"})
        return reply["version"], *self.weights(data)

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


def _pass_job(model, address, shape, data, step):
    """One pass: every task runs its block's mini-batches against the holder."""
    from ._logistic import softmax_stats
    d, K = shape
    classes, sparse, multinomial = model.classes_, data.sparse, K > 1
    batch, seed = model._batch(data.num_rows), model.seed

    def stat(block):
        X, y = unpack(block, sparse, d)
        yi = np.searchsorted(classes, y)
        client = HolderClient(address, (d, K), (K,))
        try:
            version, W, b = client.pull()
            order = seeded_rng(seed, step, mapred.context().split.start).permutation(len(yi))
            loss_sum, correct, rejected = 0.0, 0, 0
            for lo in range(0, len(order), batch):
                idx = np.sort(order[lo:lo + batch])
                loss, gW, gb, c = softmax_stats(X[idx], yi[idx], W, b, multinomial)
                loss_sum, correct = loss_sum + loss, correct + c
                reply, frames = client.call({"t": "push", "base": version, "n": len(idx)}, gW, gb)
                version = reply["version"]
                rejected += 0 if reply["accepted"] else 1
                W, b = client.weights(frames)
            mapred.counter("async_sgd", "rejected_pushes", rejected)
        finally:
            client.close()
        return np.array([loss_sum, correct, len(yi)])

    return sum_job(stat, f"logreg.async.{step}")


def fit_async(model, data, n, W, b, runner, valid):
    """Train ``model`` (a LogisticRegression) by asynchronous SGD; return the final (W, b)."""
    from ._logistic import PassMonitor
    from .sgd import lr_at
    proc, address = start_holder(getattr(model, "holder_host", "127.0.0.1") or "127.0.0.1")
    client = None
    try:
        client = HolderClient(address, W.shape, b.shape)
        client.call({"t": "init", "shape_w": list(W.shape), "shape_b": list(b.shape), "lr": model._lr(),
                     "alpha": model._alpha(n), "penalty": model.penalty or "none",
                     "max_staleness": model.max_staleness}, W, b)
        monitor = PassMonitor(model, runner, valid)
        for step in range(model.epochs):
            started = time.perf_counter()
            client.call({"t": "config", "lr": lr_at(model, step)})
            v = runner.run_sum(_pass_job(model, address, W.shape, data, step), data.ds)
            _, W, b = client.pull()
            if monitor.after_pass(step, started, W, b, v[0] / v[2], v[1] / v[2]):
                break
        stats, _ = client.call({"t": "stats"})
        model.staleness_ = {"mean": stats["mean"], "max": stats["max"],
                            "accepted": stats["accepted"], "rejected": stats["rejected"],
                            "max_staleness": model.max_staleness,
                            "histogram": {int(k): int(v) for k, v in stats["histogram"].items()}}
        client.call({"t": "stop"})
        return monitor.result(W, b)
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            os.kill(proc.pid, 9)
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


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
        try:
            _, frames = client.call({"t": "average"})
            Va, ba = client.weights(frames)
            avg_loss, _, _, avg_correct = softmax_stats(Z, yi, Va, ba, multinomial)
            version, V, b = client.pull()
            order = seeded_rng(seed, step, mapred.context().split.start).permutation(len(yi))
            rejected = 0
            for lo in range(0, len(order), batch):
                idx = order[lo:lo + batch]
                _, gV, gb, _ = softmax_stats(Z[idx], yi[idx], V, b, multinomial)
                m = len(idx)
                gV = gV + m * alpha_j[:, None] * V  # the push carries sums: the penalty times m
                gb = gb if fit_b else 0.0 * gb
                reply, frames = client.call({"t": "push", "base": version, "n": m}, gV, gb)
                version = reply["version"]
                rejected += 0 if reply["accepted"] else 1
                V, b = client.weights(frames)
            mapred.counter("async_sgd", "rejected_pushes", rejected)
        finally:
            client.close()
        return np.array([avg_loss, avg_correct, len(yi)])

    return sum_job(stat, f"logreg.async.{model.lr_schedule}.{step}")


def fit_async_adaptive(model, data, n, K, runner, valid):
    """Asynchronous SGD with the sync default's recipe: the holder runs Adam (or AdaGrad) on
    internally standardised coordinates and keeps the running average of its weights from the
    second pass on; early stopping watches the averaged model's training (or validation) loss."""
    from .optim import Coordinates, standardiser, warn_unconverged
    d = data.n_features
    mean, scale = standardiser(data, runner, center=model.fit_intercept)
    coords = Coordinates(mean, scale, K, model.fit_intercept)
    alpha = model._alpha(n)
    alpha_j = alpha / scale ** 2
    batch, tol = model._batch(n), (1e-4 if model.tol is None else float(model.tol))
    bc = mapred.broadcast({"mean": mean, "scale": scale})
    proc, address = start_holder(getattr(model, "holder_host", "127.0.0.1") or "127.0.0.1")
    client = None
    best, best_loss, waited = None, np.inf, 0
    model.n_iter_ = model.epochs
    try:
        client = HolderClient(address, (d, K), (K,))
        client.call({"t": "init", "shape_w": [d, K], "shape_b": [K], "lr": model._lr(), "alpha": 0.0,
                     "penalty": "none", "max_staleness": model.max_staleness,
                     "optimizer": model.lr_schedule}, np.zeros((d, K)), np.zeros(K))
        for step in range(model.epochs):
            started = time.perf_counter()
            client.call({"t": "config", "lr": model._lr(), "average": step >= 1})
            Vp, bp = client.weights(client.call({"t": "average"})[1])
            v = runner.run_sum(_adaptive_pass_job(model, address, d, K, data, step, alpha_j, batch, bc),
                               data.ds)
            W, b = coords.to_original(np.concatenate([Vp.ravel(), bp]))  # the model v measured
            loss = v[0] / v[2] + 0.5 * alpha * float((W * W).sum())
            entry, watched = {"loss": loss, "accuracy": v[1] / v[2]}, loss
            Va, ba = client.weights(client.call({"t": "average"})[1])
            Wa, ba_ = coords.to_original(np.concatenate([Va.ravel(), ba]))
            if valid is not None:
                records = runner.last_records
                watched, vacc = model._loss_on(valid, Wa, ba_, runner)
                runner.last_records = records
                entry.update(val_loss=watched, val_accuracy=vacc)
            runner.record(step, started, **entry)
            if not np.isfinite(watched) or not np.isfinite(Wa).all():
                raise ModelError(f"training diverged at pass {step}: loss is {watched}; lower lr")
            if step > 0 and (best is None or watched < best_loss - tol * max(1.0, abs(best_loss))):
                best, best_loss, waited = ((Wa, ba_) if valid is not None else (W, b)), watched, 0
            elif step > 0:
                waited += 1
                if waited >= model.n_iter_no_change:
                    model.n_iter_ = step + 1
                    break
        else:
            warn_unconverged(model, "async SGD", model.epochs, tol)
        stats, _ = client.call({"t": "stats"})
        model.staleness_ = {"mean": stats["mean"], "max": stats["max"],
                            "accepted": stats["accepted"], "rejected": stats["rejected"],
                            "max_staleness": model.max_staleness,
                            "histogram": {int(k): int(v) for k, v in stats["histogram"].items()}}
        client.call({"t": "stop"})
        if valid is None or best is None:
            return Wa, ba_
        return best
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            os.kill(proc.pid, 9)
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
