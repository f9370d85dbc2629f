"""The parameter holder of asynchronous SGD: a process the fit starts and kills.

It owns the weights and applies gradients as they arrive, with no barrier
between tasks.  Wire: a ZeroMQ ROUTER (127.0.0.1 unless the fit names a host); each request is
``[PROTOCOL, msgpack header, *raw array frames]`` and each reply the same.
Arrays travel as raw float64 frames whose shapes the holder already knows; the
header is a small msgpack map validated on decode.  Nothing is ever pickled:
a malformed request gets an ``error`` reply and changes nothing.

Requests (header ``t``):
- ``init`` {shape_w, shape_b, lr, alpha, penalty, max_staleness[, optimizer]} + W, b frames;
  ``optimizer`` "sgd" (default: a plain step, then the penalty's proximal step),
  "adam" or "adagrad" (per-coordinate adaptive steps; the pushed gradient
  already holds the penalty's)
- ``config`` {lr[, average]}: the learning rate for the next pass; with
  ``average`` true, every accepted push also updates a running average of the weights
- ``average``: reply ``weights`` {version} + the averaged W, b (the current ones
  before any averaging)
- ``pull``: reply ``weights`` {version} + W, b
- ``push`` {base, n} + gradient-sum frames gW, gb: applied when
  ``version - base <= max_staleness`` (else rejected and counted); reply
  ``weights`` {version, accepted, staleness} + the current W, b
- ``stats``: counts of accepted/rejected pushes and the staleness seen
- ``stop``: reply ``ok`` and exit
"""
from __future__ import annotations

import sys

import msgpack
import numpy as np

PROTOCOL = b"mapred-ps/1"
MAX_HEADER = 4096


def encode(header: dict, *arrays: np.ndarray) -> list:
    """A message as frames: protocol, msgpack header, raw float64 array bytes."""
    return [PROTOCOL, msgpack.packb(header, use_bin_type=True)] + \
        [np.ascontiguousarray(a, dtype=np.float64).tobytes() for a in arrays]


def decode(frames: list) -> tuple[dict, list]:
    """Validate and split a message; raises ValueError for anything malformed."""
    if len(frames) < 2 or frames[0] != PROTOCOL:
        raise ValueError("not a parameter-holder message")
    if len(frames[1]) > MAX_HEADER:
        raise ValueError("header too large")
    header = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
    if not isinstance(header, dict) or not isinstance(header.get("t"), str):
        raise ValueError("header is not a map with a type")
    return header, frames[2:]


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

    def _array(self, raw: bytes, like: np.ndarray) -> np.ndarray:
        if len(raw) != like.size * 8:
            raise ValueError(f"array frame of {len(raw)} bytes, expected {like.size * 8}")
        return np.frombuffer(raw, dtype=np.float64).reshape(like.shape)

    def handle(self, header: dict, data: list) -> list:
        """Apply one validated request; return the reply frames (raises ValueError for bad ones)."""
        t = header["t"]
        if t == "init":
            self.W = np.zeros(tuple(header["shape_w"]))
            self.b = np.zeros(tuple(header["shape_b"]))
            self.W = self._array(data[0], self.W).copy()
            self.b = self._array(data[1], self.b).copy()
            self.lr, self.alpha = float(header["lr"]), float(header["alpha"])
            self.penalty, self.max_staleness = header["penalty"], int(header["max_staleness"])
            self.optimizer = str(header.get("optimizer", "sgd"))
            if self.optimizer not in ("sgd", "adam", "adagrad"):
                raise ValueError(f"unknown optimizer {self.optimizer!r}")
            self.moments = {k: np.zeros_like(a) for k, a in
                            (("mW", self.W), ("vW", self.W), ("mb", self.b), ("vb", self.b))}
            return encode({"t": "ok"})
        if t == "stop":
            return encode({"t": "ok"})
        if self.W is None:
            raise ValueError("not initialised")
        if t == "config":
            self.lr = float(header["lr"])
            self.averaging = bool(header.get("average", False))
            return encode({"t": "ok"})
        if t == "average":
            W, b = (self.W, self.b) if self.avg is None else self.avg
            return encode({"t": "weights", "version": self.version}, W, b)
        if t == "pull":
            return encode({"t": "weights", "version": self.version}, self.W, self.b)
        if t == "push":
            return self._push(int(header["base"]), int(header["n"]), data)
        if t == "stats":
            return encode({"t": "stats", "accepted": self.accepted, "rejected": self.rejected,
                           "max": self.staleness_max, "version": self.version,
                           "mean": self.staleness_sum / max(1, self.accepted + self.rejected),
                           "histogram": self.histogram})
        raise ValueError(f"unknown request type {t!r}")

    def _push(self, base: int, n: int, data: list) -> list:
        gW, gb = self._array(data[0], self.W), self._array(data[1], self.b)
        staleness = self.version - base
        if staleness < 0 or n <= 0:
            raise ValueError(f"bad push: base {base}, n {n}")
        self.staleness_sum += staleness
        self.staleness_max = max(self.staleness_max, staleness)
        self.histogram[staleness] = self.histogram.get(staleness, 0) + 1
        accepted = staleness <= self.max_staleness
        if accepted:
            if self.optimizer == "sgd":
                W = self.W - self.lr * gW / n
                if self.penalty == "l2" and self.alpha:
                    W = W / (1.0 + self.lr * self.alpha)
                elif self.penalty == "l1" and self.alpha:
                    W = np.sign(W) * np.maximum(np.abs(W) - self.lr * self.alpha, 0.0)
                self.W, self.b = W, self.b - self.lr * gb / n
            else:
                self._adaptive(gW / n, gb / n)
            self.version += 1
            self.accepted += 1
            if self.averaging:
                self.avg_count += 1
                if self.avg is None:
                    self.avg = (self.W.copy(), self.b.copy())
                else:
                    f = 1.0 / self.avg_count
                    self.avg = (self.avg[0] + f * (self.W - self.avg[0]), self.avg[1] + f * (self.b - self.avg[1]))
        else:
            self.rejected += 1
        return encode({"t": "weights", "version": self.version, "accepted": accepted,
                       "staleness": staleness}, self.W, self.b)


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


def serve(host: str = "127.0.0.1") -> None:
    """Bind a ROUTER on a random port of ``host``, print it, answer until ``stop``.

    The socket comes from mapred's ``make_socket``: with a cluster secret
    (``MAPRED_SECRET``) it speaks CURVE, so workers on other hosts can reach a
    holder bound to a routable address, and without one a non-loopback bind
    is refused.
    """
    import zmq

    import mapred
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
            try:
                header, data = decode(rest)
                reply = holder.handle(header, data)
            except Exception as exc:  # malformed: answer an error, keep the weights as they are
                print(f"parameter holder: dropped a bad request: {exc}", file=sys.stderr, flush=True)
                reply = encode({"t": "error", "message": str(exc)[:200]})
                header = {}
            sock.send_multipart(envelope + reply, copy=False)
            if header.get("t") == "stop":
                break
    finally:
        sock.close(0)
        ctx.term()


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1")
