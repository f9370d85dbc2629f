"""The parameter holder of asynchronous SGD: a process the fit starts and kills.

It owns the weights and applies gradients as they arrive, with no barrier
between tasks.  Wire: a ZeroMQ ROUTER (127.0.0.1 unless the fit names a host); each request is
``[PROTOCOL, msgpack header, *raw array frames]`` and each reply the same.
Arrays travel as raw float64 frames whose shapes the holder already knows; the
header is a small msgpack map validated on decode.  Nothing is ever pickled:
a malformed request gets an ``error`` reply and changes nothing.

Requests (header ``t``):
- ``init`` {shape_w, shape_b, lr, alpha, penalty, max_staleness} + W, b frames
- ``config`` {lr}: the learning rate for the next pass
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
            return encode({"t": "ok"})
        if t == "stop":
            return encode({"t": "ok"})
        if self.W is None:
            raise ValueError("not initialised")
        if t == "config":
            self.lr = float(header["lr"])
            return encode({"t": "ok"})
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
            W = self.W - self.lr * gW / n
            if self.penalty == "l2" and self.alpha:
                W = W / (1.0 + self.lr * self.alpha)
            elif self.penalty == "l1" and self.alpha:
                W = np.sign(W) * np.maximum(np.abs(W) - self.lr * self.alpha, 0.0)
            self.W, self.b = W, self.b - self.lr * gb / n
            self.version += 1
            self.accepted += 1
        else:
            self.rejected += 1
        return encode({"t": "weights", "version": self.version, "accepted": accepted,
                       "staleness": staleness}, self.W, self.b)


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
