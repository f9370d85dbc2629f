"""A transport wrapper for fault tests: a proxy between workers and the master that misbehaves.

``ChaosProxy(master_addr, seed, faults)`` listens on a loopback port that
workers take for the master's.  Each worker routing id gets its own DEALER
to the master under the same id, so the master sees the workers as usual;
frames are forwarded both ways, except that messages of the chosen types
are, with the given probabilities, dropped, delayed, duplicated or held
back behind the next message (reordered).  The message type is read from
the msgpack header frame (``wire``'s framing) only to choose; nothing is
decoded further or changed.  Seeded, so a failing run can be replayed.
Every fault it injects is counted in ``counts``; ``Faults.limit`` bounds them
(``Faults(types={"mw.kill"}, drop=1.0, limit=1)`` loses exactly the first kill).

Only for tests and ``benchmarks/chaos.py``: it binds loopback and uses no
CURVE keys.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

import msgpack
import zmq

log = logging.getLogger(__name__)
HOLD = 0.2        # seconds a reordered message waits for a successor before it goes anyway


@dataclass(frozen=True)
class Faults:
    """Probabilities per message of a chosen type; ``delay`` is the most a delayed message waits."""

    types: frozenset = frozenset({"mw.register", "mw.heartbeat", "mw.done", "mw.failed", "mw.assign",
                                  "mw.kill", "mw.reregister", "ok"})
    drop: float = 0.02
    delay: float = 0.05
    duplicate: float = 0.03
    reorder: float = 0.03
    max_delay: float = 0.5
    limit: int = 0                   # at most this many faults in all (0: no limit), for exact scenarios


def message_type(frames: list) -> str:
    """The ``t`` of a wire header (the frame after the version frame), or ``""``."""
    for frame in frames[:3]:
        try:
            head = msgpack.unpackb(bytes(frame), raw=False)
        except Exception:  # noqa: BLE001 - not a header frame
            continue
        if isinstance(head, dict) and "t" in head:
            return str(head["t"])
    return ""


class ChaosProxy:
    """Workers → ``addr`` (this proxy) → master at ``master_addr``, with faults on chosen messages."""

    def __init__(self, master_addr: str, seed: int = 0, faults: Faults | None = None) -> None:
        self.master_addr = master_addr
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.counts: Counter = Counter()
        self.ctx = zmq.Context()
        self.front = self.ctx.socket(zmq.ROUTER)
        self.front.setsockopt(zmq.LINGER, 0)
        port = self.front.bind_to_random_port("tcp://127.0.0.1")
        self.addr = f"tcp://127.0.0.1:{port}"
        self.backs: dict[bytes, zmq.Socket] = {}
        self.timers: list = []            # (due, seq, send function, frames)
        self.held: dict = {}              # direction key -> (send, frames, since): held back to reorder
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-proxy", daemon=True)

    def start(self) -> "ChaosProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in [self.front, *self.backs.values()]:
            s.close(0)
        self.ctx.term()

    # ------------------------------------------------------------------ forwarding
    def _back(self, identity: bytes) -> zmq.Socket:
        sock = self.backs.get(identity)
        if sock is None:
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IDENTITY, identity)
            sock.connect(self.master_addr)
            self.backs[identity] = sock
        return sock

    def _loop(self) -> None:
        while not self._stop.is_set():
            poller = zmq.Poller()
            poller.register(self.front, zmq.POLLIN)
            for s in self.backs.values():
                poller.register(s, zmq.POLLIN)
            wait = 50
            if self.timers:
                wait = max(0, min(wait, int((self.timers[0][0] - time.monotonic()) * 1000)))
            for sock, _ in poller.poll(wait):
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if sock is self.front:
                        identity, rest = frames[0], frames[1:]
                        back = self._back(identity)
                        self._maybe(("up", identity), rest, lambda f, b=back: b.send_multipart(f))
                    else:
                        identity = sock.getsockopt(zmq.IDENTITY)
                        self._maybe(("down", identity), frames,
                                    lambda f, i=identity: self.front.send_multipart([i, *f]))
            now = time.monotonic()
            for key in [k for k, h in self.held.items() if now - h[2] > HOLD]:
                send, frames, _ = self.held.pop(key)      # nothing came after it: let it go now
                self._send(send, frames)
            while self.timers and self.timers[0][0] <= now:
                _, _, send, frames = heapq.heappop(self.timers)
                self._send(send, frames)

    def _maybe(self, key, frames: list, send) -> None:
        """Forward ``frames`` through ``send``, or drop, delay, duplicate or hold them back."""
        held = self.held.pop(key, None)
        kind = message_type(frames)
        f, r = self.faults, self.rng.random()
        if kind in f.types and not (f.limit and sum(self.counts.values()) >= f.limit):
            if r < f.drop:
                self.counts["dropped"] += 1
                frames = None
            elif r < f.drop + f.delay:
                self.counts["delayed"] += 1
                heapq.heappush(self.timers, (time.monotonic() + self.rng.uniform(0, f.max_delay),
                                             next(self._seq), send, frames))
                frames = None
            elif r < f.drop + f.delay + f.duplicate:
                self.counts["duplicated"] += 1
                self._send(send, frames)
            elif r < f.drop + f.delay + f.duplicate + f.reorder and held is None:
                self.counts["reordered"] += 1
                self.held[key] = (send, frames, time.monotonic())   # goes out after the next one
                frames = None
        if frames is not None:
            self._send(send, frames)
        if held is not None:
            self._send(held[0], held[1])

    @staticmethod
    def _send(send, frames) -> None:
        try:
            send(frames)
        except zmq.ZMQError as exc:
            log.debug("chaos proxy could not forward: %s", exc)
