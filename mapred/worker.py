"""The worker process: a DEALER to the master, a pool of warm executors, a shuffle server.

The loop reads top to bottom: wait for a master message or an executor to
finish; carry out assignments, kills and clean-ups; report results; heartbeat
every ``heartbeat`` seconds.  Every report also says how many slots are free,
and the master answers with work for them (the worker pulls by reporting).

What the worker never does: decide anything about scheduling (the master's
core does), or unpickle (job code is passed as bytes to executors, which load
it in ``task.child.load_job_code``).  A master silent for ``dead_timeout``
seconds is presumed restarted: the worker kills what it runs and registers
again.  A master that refuses the registration (another mapred version) ends
the worker with that reason.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import time
from dataclasses import replace

import psutil
import zmq

from mapred import config as configmod
from mapred.net import wire
from mapred.errors import ClusterError, ProtocolError
from mapred.task.pool import ExecutorPool, PoolEvent
from mapred.task.sweep import sweep
from mapred.task.spec import NO_JOB_CODE, SLOT_BUSY, AttemptReport, FetchSettings, MapSpec, ReduceSpec
from mapred.io.fs import HOSTNAME
from mapred.shuffle.serve import ShuffleServer
from mapred.net.transport import Backoff, make_socket, recv, send, stop_authenticator, warn_if_open
from mapred.types import cache_key
from mapred.version import __version__

log = logging.getLogger("mapred.worker")
RECONNECT_AFTER = 4      # unanswered registrations before the worker starts a fresh connection


class Worker:
    """One worker: ``slots`` executors serving tasks for the master at ``master``."""

    def __init__(self, master: str, data_dir: str, slots: int | None = None, host: str = "127.0.0.1",
                 config=None, short_circuit: bool = True, version: str = __version__) -> None:
        self.config = config or configmod.load()
        self.master = master
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.swept = sweep(self.data_dir)     # a crashed predecessor's map outputs: never fetched again
        self.slots = slots or os.cpu_count() or 1
        self.version = version
        self.short_circuit = short_circuit
        self.worker_id = f"{HOSTNAME}-{os.getpid()}-{secrets.token_hex(3)}"
        warn_if_open(master, f"worker {self.worker_id}")
        self.ctx = zmq.Context()
        self.shuffle = ShuffleServer(self.data_dir, host).start()
        self.pool = ExecutorPool(self.slots, self.config.executor_memory_cap)
        self.session = 0
        self.sock = self._connect()
        self.blobs: dict[str, bytes] = {}
        self.slot_cache: dict[int, set] = {s.index: set() for s in self.pool.slots}
        self.registered = False
        self.running = True
        self.exit_reason = ""
        self.retired = False          # drained and told to leave by the master
        self.last_heard = time.monotonic()
        self.next_beat = 0.0
        self.register_backoff = Backoff(base=0.5, cap=5.0)
        self.register_tries = 0

    def _connect(self) -> zmq.Socket:
        """A DEALER whose routing id is fresh for this session (``worker_id/session``).

        Reconnecting under the old id while the master's ROUTER still holds
        the old connection gets the new one silently ignored; a new id per
        session is always heard.
        """
        sock = make_socket(self.ctx, zmq.DEALER, identity=f"{self.worker_id}/{self.session}".encode())
        sock.connect(self.master)
        return sock

    # ------------------------------------------------------------------ main loop
    def serve(self) -> None:
        """Run until ``stop()``, SIGTERM or a refused registration."""
        log.info("worker %s: %d slots, shuffle at %s, master %s", self.worker_id, self.slots,
                 self.shuffle.addr, self.master)
        try:
            while self.running:
                self._step()
        finally:
            self.close()

    def _step(self) -> None:
        now = time.monotonic()
        if now >= self.next_beat:
            self._beat(now)
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        busy = [s for s in self.pool.slots if s.attempt is not None]
        for s in busy:
            poller.register(s.conn.fileno(), zmq.POLLIN)
        timeout = max(0.0, min(self.next_beat - time.monotonic(), 0.5))
        ready = dict(poller.poll(int(timeout * 1000)))
        if self.sock in ready:
            self._drain_master()
        if busy or self.config.executor_memory_cap:
            for pe in self.pool.poll(0):
                self._report(pe)

    def _beat(self, now: float) -> None:
        """Register (with backoff) until accepted; then heartbeat; re-register if the master went quiet."""
        if self.registered and now - self.last_heard > self.config.dead_timeout:
            log.warning("master %s silent for %.1fs; registering again", self.master, now - self.last_heard)
            self._forget_master()
        if not self.registered:
            mem = psutil.virtual_memory().total
            send(self.sock, wire.WorkerRegister(worker_id=self.worker_id, host=HOSTNAME, slots=self.slots,
                                                memory=mem, shuffle_addr=self.shuffle.addr,
                                                version=self.version, pid=os.getpid(),
                                                session=self.session))
            wait = self.register_backoff.next()
            self.register_tries += 1
            if self.register_tries % RECONNECT_AFTER == 0:    # a stuck connection: start a new session
                self._new_session()
            if self.register_tries > 1:
                log.warning("no answer from master %s to %d registrations; retrying in %.1fs",
                            self.master, self.register_tries - 1, wait)
            self.next_beat = now + wait
            return
        running = [s.attempt for s in self.pool.slots if s.attempt is not None]
        send(self.sock, wire.WorkerBeat(worker_id=self.worker_id, running=running, progress=self._progress(),
                                        free=self.slots - len(running)))
        self.next_beat = now + self.config.heartbeat_interval

    def _progress(self) -> list:
        """``[[attempt, fraction, counters]]`` of running attempts.

        Executors report their progress and counters so far about once a
        second between records; before an attempt's first report it is at
        0 (an estimate from the executor's reads counted its imports and job
        code too, and showed a map at 99% as it started).
        """
        out = []
        for slot in self.pool.slots:
            if slot.attempt is None:
                continue
            if slot.progress is not None:
                fraction, counters = slot.progress        # the executor's own report: exact
                out.append([slot.attempt, round(fraction, 3), counters])
            else:
                out.append([slot.attempt, 0.0])
        return out

    def _forget_master(self) -> None:
        """Start over with a fresh socket: kill running attempts (the master re-runs them).

        Map outputs stay on disk: a master that restarted from its journal
        still knows them, and reducers fetch them from here as before.
        """
        self.registered = False
        for slot in self.pool.slots:
            if slot.attempt is not None:
                self.pool.kill_attempt(slot)
                self.slot_cache[slot.index] = set()
        self._new_session()
        self.register_backoff.reset()
        self.next_beat = 0.0

    def _new_session(self) -> None:
        """A new session number and a new socket under its routing id."""
        self.session += 1
        self.sock.close(0)
        self.sock = self._connect()
        self.last_heard = time.monotonic()

    # ------------------------------------------------------------------ master messages
    def _drain_master(self) -> None:
        while True:
            try:
                got = recv(self.sock, 0)
            except ProtocolError as exc:
                log.warning("dropped a bad message from the master: %s", exc)
                continue
            except zmq.Again:
                return
            if got is None:
                return
            _, msg, data = got
            self.last_heard = time.monotonic()
            self._handle(msg, data)

    def _handle(self, msg, data: list) -> None:
        if self.retired:
            return     # leaving: nothing after the master's Retire matters
        if isinstance(msg, wire.Ok):
            if not self.registered and msg.info.get("registered") == self.worker_id:
                self.registered = True
                self.register_backoff.reset()
                self.register_tries = 0
                log.info("registered with master %s", self.master)
                self.next_beat = time.monotonic() + self.config.heartbeat_interval
        elif isinstance(msg, wire.Error):
            self._refused(msg)
        elif isinstance(msg, wire.Assign):
            self._assign(msg, data)
        elif isinstance(msg, wire.Kill):
            self._kill(msg.attempt, msg.reason)
        elif isinstance(msg, wire.Discard):
            self._remove(msg.attempt)
        elif isinstance(msg, wire.DropJob):
            self._drop_job(msg.job_id)
        elif isinstance(msg, wire.Retire):
            log.info("worker %s DECOMMISSIONED: %s", self.worker_id, msg.reason)
            self.retired = True
            self.running = False
        elif isinstance(msg, wire.Reregister):
            log.warning("master asks us to register again: %s", msg.reason)
            self._forget_master()
        else:
            log.warning("unexpected %s from the master dropped", msg.TYPE)

    def _refused(self, msg: wire.Error) -> None:
        if msg.kind == "VersionMismatch":
            log.error("master refused this worker: %s", msg.message)
            self.exit_reason = msg.message
            self.running = False
        else:
            log.warning("master error: %s: %s", msg.kind, msg.message)

    def _assign(self, msg: wire.Assign, data: list) -> None:
        spec = msg.spec
        if not isinstance(spec, (MapSpec, ReduceSpec)) or spec.job_id != msg.job_id:
            log.warning("dropped an assignment whose spec is a %s for job %r", type(spec).__name__,
                        getattr(spec, "job_id", None))
            return
        attempt = spec.attempt
        if any(s.attempt == attempt for s in self.pool.slots):
            log.info("assignment of %s repeated; it already runs", attempt)   # a duplicated message
            return
        if msg.with_code and data:
            self.blobs[msg.job_id] = bytes(data[0])
        blob = self.blobs.get(msg.job_id)
        slot = self._free_slot(spec)
        if blob is None or slot is None:
            # a refusal, not a failure: the master places the attempt again and, for want of code,
            # sends the code with it; a slot still busy with a killed attempt frees at the next kill
            kind, why = (NO_JOB_CODE, "job code never arrived") if blob is None else (SLOT_BUSY, "no free slot")
            self._send(wire.AttemptFail(worker_id=self.worker_id, attempt=attempt, report=AttemptReport(
                kind, f"{self.worker_id}: {why}", attempt=attempt)))
            return
        # the attempt's files live under this worker's data dir, whatever the master suggested
        work_dir = os.path.join(self.data_dir, msg.job_id, attempt)
        self.shuffle.allow(msg.job_id, spec.job_token)   # this job's reducers may fetch its outputs here
        if isinstance(spec, MapSpec):
            spec = replace(spec, work_dir=work_dir, shuffle_addr=self.shuffle.addr)
        else:
            spec = replace(spec, work_dir=work_dir, shuffle=FetchSettings(
                buffer_bytes=self.config.reduce_buffer_bytes, short_circuit=self.short_circuit,
                job_id=msg.job_id, token=spec.job_token))
        self.pool.start_attempt(slot, msg.job_id, blob, spec)

    def _free_slot(self, spec):
        """An idle executor, preferring one that already caches this map's split."""
        free = [s for s in self.pool.slots if s.attempt is None]
        if not free:
            return None
        key = cache_key(spec.split) if isinstance(spec, MapSpec) else ""
        for s in free:
            if key and key in self.slot_cache[s.index]:
                return s
        return min(free, key=lambda s: len(self.slot_cache[s.index]))

    def _kill(self, attempt: str, reason: str) -> None:
        """Stop ``attempt`` and remove its files; a kill of an attempt not running does nothing.

        The master re-sends kills (every heartbeat that still lists the
        attempt), and a repeated or late kill must not delete what a finished
        attempt left for the reducers: the master discards those itself.
        """
        for slot in self.pool.slots:
            if slot.attempt == attempt:
                log.info("killing %s: %s", attempt, reason)
                self.pool.kill_attempt(slot)
                self.slot_cache[slot.index] = set()
                self._remove(attempt)

    def _remove(self, attempt: str) -> None:
        job_id = attempt.split("-", 1)[0] if "-" in attempt else ""
        path = os.path.join(self.data_dir, job_id, attempt)
        if job_id and os.path.realpath(path).startswith(self.data_dir + os.sep):
            self.shuffle.forget(os.path.realpath(path))
            shutil.rmtree(path, ignore_errors=True)

    def _drop_job(self, job_id: str) -> None:
        self.shuffle.disallow(job_id)
        self.pool.drop_job(job_id)
        self.blobs.pop(job_id, None)
        path = os.path.join(self.data_dir, job_id)
        if job_id and os.path.realpath(path).startswith(self.data_dir + os.sep):
            self.shuffle.forget(os.path.realpath(path))
            shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------------ executor results
    def _report(self, pe: PoolEvent) -> None:
        if pe.kind == "done":
            result = pe.report
            self.slot_cache[pe.slot].update(result.cached)
            self._send(wire.AttemptDone(worker_id=self.worker_id, attempt=pe.attempt,
                                        output=result.output, counters=result.counters, cached=list(result.cached)))
            return
        if pe.kind == "died":
            self.slot_cache[pe.slot] = set()
        self._send(wire.AttemptFail(worker_id=self.worker_id, attempt=pe.attempt, report=pe.report))

    def _send(self, msg: wire.Message) -> None:
        send(self.sock, msg)

    # ------------------------------------------------------------------ shutdown
    def stop(self, *_args) -> None:
        """Ask the loop to end (a signal handler)."""
        self.running = False

    def close(self) -> None:
        """Stop the executors and the shuffle server; close the socket."""
        self.pool.close()
        self.shuffle.stop()
        self.sock.close(0)
        stop_authenticator(self.ctx)
        self.ctx.term()


def run(master: str, data_dir: str, slots: int | None = None, host: str = "127.0.0.1",
        short_circuit: bool = True, version: str = __version__, **settings) -> int:
    """Start a worker and serve until SIGTERM/SIGINT; ``settings`` override ``Config`` fields."""
    config = configmod.load(**settings)
    worker = Worker(master, data_dir, slots, host, config, short_circuit=short_circuit, version=version)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.serve()
    if worker.exit_reason:
        raise ClusterError(worker.exit_reason)
    return 0
