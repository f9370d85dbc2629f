"""The parameter holder of asynchronous SGD: a process the fit starts and kills.

It owns the weights and applies gradients as they arrive, with no barrier
between tasks.  Wire: a ZeroMQ ROUTER (127.0.0.1 unless the fit names a host)
speaking mapred's own protocol: every request and reply is a typed message of
``mapred.wire`` (section "parameter holder": ``ps.init``, ``ps.config``,
``ps.pull``, ``ps.average``, ``ps.push``, ``ps.stats``, ``ps.stop``; replies
``ps.weights``, ``ps.stats_reply``, ``ok``, ``error``), validated on decode,
followed by raw float64 array frames whose shapes the holder already knows.
Nothing is ever pickled: a malformed request gets an ``error`` reply, is
logged, and changes nothing.

- ``ps.init`` + W, b frames: weights, step rule (``optimizer`` "sgd": a plain
  step, then the penalty's proximal step; "adam" / "adagrad": per-coordinate
  adaptive steps, the pushed gradient already holding the penalty's) and
  the staleness bound; "prox" (SVRG): a plain step with the pushed
  variance-reduced gradient, then the penalty's proximal step per
  coordinate (L2 shrink, or L1 soft threshold with ``penalty="l1"``), its
  strengths (one per feature) in a third frame;
- ``ps.config``: the learning rate for the next pass; with ``average``, every
  accepted push also updates a running average of the weights;
- ``ps.push`` {base, n} + gradient-sum frames: applied when
  ``version - base <= max_staleness`` (else rejected and counted); the reply
  carries the current weights, so a task always continues from the newest.
"""
from __future__ import annotations

import sys

import numpy as np

import mapred

OPTIMIZERS = ("sgd", "adam", "adagrad", "prox")


def encode(msg, *arrays: np.ndarray) -> list:
    """A holder message as frames: the wire header, then raw float64 array bytes."""
    return mapred.wire.encode(msg, *(np.ascontiguousarray(a, dtype=np.float64).tobytes() for a in arrays))


def decode(frames: list):
    """``(message, array frames)``; ``mapred.errors.ProtocolError`` for anything malformed."""
    return mapred.wire.decode(frames)


class Holder:
    """The sans-IO state: weights, version and staleness statistics; ``handle`` maps request to reply."""

    def __init__(self) -> None:
        self.W = self.b = None
        self.version = 0
        self.lr, self.alpha, self.penalty, self.max_staleness = 0.1, 0.0, "l2", 8
        self.accepted = self.rejected = 0
        self.staleness_sum = self.staleness_max = 0
        self.histogram: dict[int, int] = {}
        self.optimizer, self.t, self.moments = "sgd", 0, {}
        self.averaging, self.avg, self.avg_count = False, None, 0
        self.alpha_j = None

    def _array(self, data: list, i: int, like: np.ndarray) -> np.ndarray:
        if len(data) <= i:
            raise ValueError(f"array frame {i} is missing")
        raw = bytes(data[i])
        if len(raw) != like.size * 8:
            raise ValueError(f"array frame of {len(raw)} bytes, expected {like.size * 8}")
        return np.frombuffer(raw, dtype=np.float64).reshape(like.shape)

    def handle(self, msg, data: list) -> list:
        """Apply one decoded request; return the reply frames (raises ValueError for a bad one)."""
        w = mapred.wire
        if isinstance(msg, w.HolderInit):
            return self._init(msg, data)
        if isinstance(msg, w.HolderStop):
            return encode(w.Ok())
        if self.W is None:
            raise ValueError("not initialised")
        if isinstance(msg, w.HolderConfig):
            self.lr, self.averaging = msg.lr, msg.average
            return encode(w.Ok())
        if isinstance(msg, w.HolderAverage):
            W, b = (self.W, self.b) if self.avg is None else self.avg
            return encode(w.HolderWeights(version=self.version), W, b)
        if isinstance(msg, w.HolderPull):
            return encode(w.HolderWeights(version=self.version), self.W, self.b)
        if isinstance(msg, w.HolderPush):
            return self._push(msg.base, msg.n, data)
        if isinstance(msg, w.HolderStatsRequest):
            return encode(w.HolderStats(accepted=self.accepted, rejected=self.rejected,
                                        max=self.staleness_max, version=self.version,
                                        mean=self.staleness_sum / max(1, self.accepted + self.rejected),
                                        histogram={str(k): v for k, v in self.histogram.items()}))
        raise ValueError(f"unknown request type {msg.TYPE!r}")

    def _init(self, msg, data: list) -> list:
        shape_w, shape_b = tuple(msg.shape_w), tuple(msg.shape_b)
        if len(shape_w) != 2 or len(shape_b) != 1 or min(shape_w + shape_b) < 1 \
                or shape_w[1] != shape_b[0]:
            raise ValueError(f"bad shapes {shape_w} / {shape_b}")
        if msg.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {msg.optimizer!r}")
        if msg.penalty not in ("l2", "l1", "none"):
            raise ValueError(f"unknown penalty {msg.penalty!r}")
        if not msg.lr > 0 or msg.alpha < 0 or msg.max_staleness < 0:
            raise ValueError("lr must be positive, alpha and max_staleness non-negative")
        self.W = self._array(data, 0, np.zeros(shape_w)).copy()
        self.b = self._array(data, 1, np.zeros(shape_b)).copy()
        self.lr, self.alpha, self.penalty = msg.lr, msg.alpha, msg.penalty
        self.max_staleness, self.optimizer = msg.max_staleness, msg.optimizer
        if msg.optimizer == "prox":
            self.alpha_j = self._array(data, 2, np.zeros(shape_w[0])).copy()
            if not (np.isfinite(self.alpha_j).all() and (self.alpha_j >= 0).all()):
                raise ValueError("the per-feature penalty must be finite and non-negative")
        self.moments = {k: np.zeros_like(a) for k, a in
                        (("mW", self.W), ("vW", self.W), ("mb", self.b), ("vb", self.b))}
        return encode(mapred.wire.Ok())

    def _push(self, base: int, n: int, data: list) -> list:
        gW, gb = self._array(data, 0, self.W), self._array(data, 1, self.b)
        staleness = self.version - base
        if staleness < 0 or n <= 0:
            raise ValueError(f"bad push: base {base}, n {n}")
        self.staleness_sum += staleness
        self.staleness_max = max(self.staleness_max, staleness)
        self.histogram[staleness] = self.histogram.get(staleness, 0) + 1
        accepted = staleness <= self.max_staleness
        if accepted:
            self._apply(gW / n, gb / n)
            self.version += 1
            self.accepted += 1
            if self.averaging:
                self._average()
        else:
            self.rejected += 1
        return encode(mapred.wire.HolderWeights(version=self.version, accepted=accepted, staleness=staleness),
                      self.W, self.b)

    def _apply(self, gW: np.ndarray, gb: np.ndarray) -> None:
        """One step with the mean gradient: plain SGD plus the penalty's prox, or adaptive."""
        if self.optimizer == "prox":  # per-feature strengths: L1 soft threshold, else L2 shrink
            W, cut = self.W - self.lr * gW, (self.lr * self.alpha_j)[:, None]
            l1 = self.penalty == "l1"
            self.W = np.sign(W) * np.maximum(np.abs(W) - cut, 0.0) if l1 else W / (1.0 + cut)
            self.b = self.b - self.lr * gb
            return
        if self.optimizer != "sgd":
            self._adaptive(gW, gb)
            return
        W = self.W - self.lr * gW
        if self.penalty == "l2" and self.alpha:
            W = W / (1.0 + self.lr * self.alpha)
        elif self.penalty == "l1" and self.alpha:
            W = np.sign(W) * np.maximum(np.abs(W) - self.lr * self.alpha, 0.0)
        self.W, self.b = W, self.b - self.lr * gb

    def _average(self) -> None:
        """Fold the new weights into the running (Polyak-Ruppert) average."""
        self.avg_count += 1
        if self.avg is None:
            self.avg = (self.W.copy(), self.b.copy())
            return
        f = 1.0 / self.avg_count
        self.avg = (self.avg[0] + f * (self.W - self.avg[0]), self.avg[1] + f * (self.b - self.avg[1]))

    def _adaptive(self, gW: np.ndarray, gb: np.ndarray) -> None:
        """One Adam (0.9 / 0.999) or AdaGrad step: each coordinate's step bounded by about lr."""
        self.t += 1
        m = self.moments
        if self.optimizer == "adagrad":
            m["vW"] = m["vW"] + gW * gW
            m["vb"] = m["vb"] + gb * gb
            self.W = self.W - self.lr * gW / (np.sqrt(m["vW"]) + 1e-8)
            self.b = self.b - self.lr * gb / (np.sqrt(m["vb"]) + 1e-8)
            return
        c1, c2 = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
        m["mW"], m["vW"] = 0.9 * m["mW"] + 0.1 * gW, 0.999 * m["vW"] + 0.001 * gW * gW
        m["mb"], m["vb"] = 0.9 * m["mb"] + 0.1 * gb, 0.999 * m["vb"] + 0.001 * gb * gb
        self.W = self.W - self.lr * (m["mW"] / c1) / (np.sqrt(m["vW"] / c2) + 1e-8)
        self.b = self.b - self.lr * (m["mb"] / c1) / (np.sqrt(m["vb"] / c2) + 1e-8)


def answer(holder: Holder, frames: list) -> tuple[list, bool]:
    """The reply frames to one request's frames, and whether it was ``ps.stop``.

    A request that does not decode, or that the holder refuses, is logged and
    answered with an ``error`` message; the holder's state is unchanged.
    """
    try:
        msg, data = decode(frames)
        return holder.handle(msg, data), isinstance(msg, mapred.wire.HolderStop)
    except Exception as exc:  # noqa: BLE001 - malformed: answer an error, keep the weights as they are
        print(f"parameter holder: dropped a bad request: {exc}", file=sys.stderr, flush=True)
        return encode(mapred.wire.Error(kind=type(exc).__name__, message=str(exc)[:200])), False


def serve(host: str = "127.0.0.1") -> None:
    """Bind a ROUTER on a random port of ``host``, print it, answer until ``ps.stop``.

    The socket comes from mapred's ``make_socket``: with a cluster secret
    (``MAPRED_SECRET``) it speaks CURVE, so workers on other hosts can reach a
    holder bound to a routable address, and without one a non-loopback bind
    is refused.
    """
    import zmq

    ctx = zmq.Context()
    sock = mapred.make_socket(ctx, zmq.ROUTER)
    port = mapred.bind_socket(sock, host)
    print(f"PORT {port}", flush=True)
    holder = Holder()
    try:
        while True:
            frames = sock.recv_multipart(copy=True)
            ident, rest = frames[0], frames[1:]
            if rest and rest[0] == b"":  # REQ envelope delimiter
                envelope, rest = [ident, b""], rest[1:]
            else:
                envelope = [ident]
            reply, stop = answer(holder, rest)
            sock.send_multipart(envelope + reply, copy=False)
            if stop:
                break
    finally:
        sock.close(0)
        ctx.term()


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1")
