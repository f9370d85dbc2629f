"""The reducer's side of the network shuffle: fetch one partition from every map's worker.

All sources are fetched at once (one request in flight per source, each a
window of ``window`` bytes), so a slow worker does not serialise the rest.
Memory is bounded: fetched bytes stay in memory until ``buffer_bytes`` in
total, after which each further source's data goes to a file in the
attempt's work directory and is streamed back during the merge.  A request
that times out or is refused is retried on a fresh socket up to ``retries``
times; then ``FetchError(map_index)`` tells the master to re-run that map.

Imported lazily by ``fetch.configure`` inside executor processes, so tasks
that never fetch remotely never import ZeroMQ.
"""
from __future__ import annotations

import os
import time
from typing import Iterator

import zmq

from mapred.net import wire
from mapred.errors import FetchError, ProtocolError
from mapred.net.transport import make_socket, recv, send
from mapred.shuffle.spill import iter_segment_chunks

READ_BLOCK = 1 << 20


class _Source:
    """One map output being fetched: its socket, how far it got, where its bytes are kept."""

    def __init__(self, map_index: int, output: dict) -> None:
        self.map_index = map_index
        self.path = output["path"]
        self.addr = output.get("addr", "")
        self.sock = None
        self.offset = 0
        self.total: int | None = None
        self.compression = "none"
        self.chunks: list = []
        self.file = None
        self.file_path = ""
        self.sent_at: float | None = None
        self.rid = 0
        self.tries = 0
        self.error = ""

    @property
    def done(self) -> bool:
        return self.total is not None and self.offset >= self.total


class NetFetcher:
    """``fetcher(sources, partition, work_dir) -> {map_index: records}``; see the module doc."""

    def __init__(self, buffer_bytes: int, retries: int = 3, timeout: float = 5.0,
                 window: int = 4 << 20, secret: str | None = None, job_id: str = "",
                 token: str = "") -> None:
        self.job_id, self.token = job_id, token   # presented with every fetch (docs/security.md)
        self.buffer_bytes = max(0, buffer_bytes)
        self.retries, self.timeout, self.window, self.secret = retries, timeout, window, secret
        self.ctx = zmq.Context.instance()
        self.in_memory = 0
        self.spilled = 0

    def __call__(self, sources, partition: int, work_dir: str) -> dict:
        srcs = [_Source(m, out) for m, _w, out in sources]
        for s in srcs:
            if not s.addr:
                raise FetchError(f"map {s.map_index} output {s.path} has no shuffle address", s.map_index)
        os.makedirs(work_dir, exist_ok=True)
        try:
            self._fetch_all(srcs, partition, work_dir)
        finally:
            for s in srcs:
                if s.sock is not None:
                    s.sock.close(0)
                if s.file is not None:
                    s.file.close()
        return {s.map_index: iter_segment_chunks(self._chunks(s), s.compression) for s in srcs}

    # ------------------------------------------------------------------ the fetch loop
    def _fetch_all(self, srcs: list, partition: int, work_dir: str) -> None:
        poller = zmq.Poller()
        for s in srcs:
            self._open(s, poller)
        pending = [s for s in srcs]
        while pending:
            now = time.monotonic()
            for s in pending:
                if s.sent_at is None:
                    self._request(s, partition)
                elif now - s.sent_at > self.timeout:
                    self._retry(s, poller, f"no answer from {s.addr} in {self.timeout:.0f}s")
            for sock, _ in poller.poll(100):
                s = next(x for x in srcs if x.sock is sock)
                self._receive(s, poller, work_dir)
            pending = [s for s in pending if not s.done]

    def _open(self, s: _Source, poller: zmq.Poller) -> None:
        s.sock = make_socket(self.ctx, zmq.DEALER, secret=self.secret)
        s.sock.connect(s.addr)
        poller.register(s.sock, zmq.POLLIN)

    def _request(self, s: _Source, partition: int) -> None:
        s.rid += 1
        send(s.sock, wire.ShuffleRead(rid=s.rid, path=s.path, partition=partition,
                                      offset=s.offset, length=self.window, job_id=self.job_id,
                                      token=self.token))
        s.sent_at = time.monotonic()

    def _retry(self, s: _Source, poller: zmq.Poller, why: str) -> None:
        s.tries += 1
        if s.tries > self.retries:
            raise FetchError(f"cannot fetch map {s.map_index} output {s.path} from {s.addr} "
                             f"after {s.tries} tries: {why}", s.map_index)
        poller.unregister(s.sock)
        s.sock.close(0)
        time.sleep(min(1.0, 0.1 * 2 ** s.tries))  # backoff before the next try, not synchronisation
        self._open(s, poller)
        s.sent_at = None

    def _receive(self, s: _Source, poller: zmq.Poller, work_dir: str) -> None:
        try:
            got = recv(s.sock, 0)
        except ProtocolError as exc:
            self._retry(s, poller, f"bad reply: {exc}")
            return
        if got is None:
            return
        _, msg, data = got
        if msg.rid != s.rid:
            return  # a stale reply to a request we gave up on
        if isinstance(msg, wire.Error) or not isinstance(msg, wire.ShuffleData) or len(data) != 1:
            self._retry(s, poller, getattr(msg, "message", f"unexpected {msg.TYPE}"))
            return
        chunk = bytes(data[0])
        if msg.offset != s.offset or (not chunk and msg.total > s.offset):
            self._retry(s, poller, f"window at {msg.offset} of {msg.total}, wanted {s.offset}")
            return
        s.total, s.compression = msg.total, msg.compression
        self._keep(s, chunk, work_dir)
        s.offset += len(chunk)
        s.sent_at = None

    def _keep(self, s: _Source, chunk: bytes, work_dir: str) -> None:
        """In memory while the reduce buffer allows, else appended to this source's spill file."""
        if s.file is None and self.in_memory + len(chunk) <= self.buffer_bytes:
            s.chunks.append(chunk)
            self.in_memory += len(chunk)
            return
        if s.file is None:
            s.file_path = os.path.join(work_dir, f"fetched-map-{s.map_index:05d}.seg")
            s.file = open(s.file_path, "wb")
            for c in s.chunks:
                s.file.write(c)
            self.in_memory -= sum(len(c) for c in s.chunks)
            s.chunks = []
        s.file.write(chunk)
        self.spilled += len(chunk)

    @staticmethod
    def _chunks(s: _Source) -> Iterator[bytes]:
        if not s.file_path:
            yield from s.chunks
            return
        with open(s.file_path, "rb") as f:
            while True:
                data = f.read(READ_BLOCK)
                if not data:
                    return
                yield data
