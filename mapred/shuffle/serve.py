"""A worker's shuffle server: hands reducers byte ranges of the map output segments on its disk.

Reducers ask for ``(path, partition, offset, length)``; the server answers
with the segment's bytes as one raw ZeroMQ frame (never inside msgpack) and
the segment's total length, so a reducer pulls a large segment in bounded
windows.  Only files under the worker's data directory that have a run index
beside them are served — a path from the network never reaches ``open``
unchecked.  A fetch must name its job and present the job's token, which the
master handed this worker with the job's attempts (``allow``); the path must
lie in that job's directory, so a job's map output is served only to that
job's reducers (Hadoop's shuffle secret).  Bad requests are answered with
``Error``; refusals are logged and counted; garbage is logged and dropped.  The server runs in its own thread with its own socket, so a busy
shuffle never delays the worker's heartbeats.
"""
from __future__ import annotations

import logging
import os
import threading

import zmq

from mapred.net import wire
from mapred.net.transport import bind, make_socket, recv_or_drop, send
from mapred.security import tokens
from mapred.security.refusals import Refusals
from mapred.shuffle.spill import RunIndex

log = logging.getLogger("mapred.shuffle.serve")
MAX_WINDOW = 16 * 1024 * 1024


class ShuffleServer:
    """Serves ``data_dir``'s map outputs on ``tcp://host:port`` until ``stop``."""

    def __init__(self, data_dir: str, host: str = "127.0.0.1", port: int = 0,
                 secret: str | None = None, require_tokens: bool = True) -> None:
        self.root = os.path.realpath(data_dir)
        self.require_tokens = require_tokens
        self.job_tokens: dict[str, str] = {}     # job id -> its token (set by the worker loop)
        self.refusals = Refusals("shuffle server", log)
        self.ctx = zmq.Context.instance()
        self.sock = make_socket(self.ctx, zmq.ROUTER, secret=secret)
        self.port = bind(self.sock, host, port)
        self.addr = f"tcp://{host}:{self.port}"
        self._indexes: dict[str, RunIndex] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="shuffle-server", daemon=True)

    def start(self) -> "ShuffleServer":
        """Start serving partitions in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the socket."""
        self._stop.set()
        self._thread.join(5)

    def allow(self, job_id: str, token: str) -> None:
        """Serve ``job_id``'s map outputs to fetches presenting ``token``."""
        self.job_tokens[job_id] = token

    def disallow(self, job_id: str) -> None:
        self.job_tokens.pop(job_id, None)

    def forget(self, prefix: str) -> None:
        """Drop cached indexes of files under ``prefix`` (a job or attempt directory was deleted)."""
        for path in [p for p in list(self._indexes) if p.startswith(prefix)]:
            self._indexes.pop(path, None)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                got = recv_or_drop(self.sock, 0.2, "shuffle server", routed=True)
                if got is None:
                    continue
                route, msg, _ = got
                reply, data = self._answer(msg)
                send(self.sock, reply, *data, route=route)
        finally:
            self.sock.close(0)

    def _answer(self, msg) -> tuple[wire.Message, list]:
        if not isinstance(msg, wire.ShuffleRead):
            return wire.Error(rid=msg.rid, kind="ProtocolError",
                              message=f"{msg.TYPE} is not a shuffle request"), []
        try:
            seg = self._segment(msg.path, msg.partition)
            self._check_job(msg)
            offset = max(0, msg.offset)
            length = max(0, min(msg.length, MAX_WINDOW, seg.length - offset))
            with open(seg.path, "rb") as f:
                f.seek(seg.offset + offset)
                data = f.read(length)
            return wire.ShuffleData(rid=msg.rid, offset=offset, total=seg.length,
                                    compression=seg.compression), [data]
        except tokens.TokenError as exc:
            return wire.Error(rid=msg.rid, kind="PermissionDenied", message=str(exc)), []
        except (OSError, ValueError, KeyError, IndexError) as exc:
            log.info("shuffle read of %s partition %s failed: %s", msg.path, msg.partition, exc)
            return wire.Error(rid=msg.rid, kind="FetchError", message=str(exc)), []

    def _check_job(self, msg: wire.ShuffleRead) -> None:
        """The fetch names a job whose directory holds the path, and that job's token."""
        if not self.require_tokens:
            return
        job_dir = os.path.join(self.root, msg.job_id)
        inside = bool(msg.job_id) and msg.job_id.isalnum() and \
            os.path.realpath(msg.path).startswith(job_dir + os.sep)
        try:
            if not inside:
                raise tokens.TokenError(f"{msg.path} is not an output of job {msg.job_id!r}")
            tokens.check_job_token(msg.token, msg.job_id, self.job_tokens.get(msg.job_id, ""))
        except tokens.TokenError as exc:
            reason = "no_job_token" if not msg.token else "bad_job_token"
            self.refusals.refuse(f"a fetch of {msg.path}", reason, str(exc))
            raise

    def _segment(self, path: str, partition: int):
        real = os.path.realpath(path)
        if not real.startswith(self.root + os.sep):
            raise ValueError(f"{path} is not a map output of this worker")
        index = self._indexes.get(real)
        if index is None:
            if not os.path.exists(real + ".index"):
                raise ValueError(f"{path} has no run index")
            index = RunIndex.load(real)
            self._indexes[real] = index
        if not 0 <= partition < len(index.segments):
            raise ValueError(f"{path} has no partition {partition}")
        return index.segments[partition]
