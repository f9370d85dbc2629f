"""Warm executor processes: each runs one attempt at a time, apart from the control loop.

A task that segfaults, calls ``os._exit`` or blows its memory cap kills only
its executor process; the pool reports that attempt as failed with the reason
and starts a fresh process in the slot.  Parent and executors speak the wire
module's ``ex.*`` messages over a pipe (never pickle): job code travels as
bytes and is unpickled in one place, ``task.child.load_job_code``, inside the
executor.
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import psutil

from mapred.errors import ProtocolError
from mapred.net import wire
from mapred.task.spec import AttemptReport, AttemptResult

log = logging.getLogger(__name__)

# executors are one per core: threaded BLAS in each would oversubscribe the cores and spin,
# so each gets one thread unless the user's environment says otherwise
_ONE_THREAD_BLAS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}


@dataclass
class Slot:
    """One executor process and what it is running."""

    index: int
    incarnation: int = 0
    proc: Any = None
    conn: Any = None
    attempt: str | None = None
    jobs: set = field(default_factory=set)
    progress: tuple | None = None      # (fraction, counters) last reported by the running attempt

    @property
    def worker_id(self) -> str:
        """The core's worker id for this slot's current process: a restarted executor is a new worker."""
        return f"exec-{self.index}.{self.incarnation}"


@dataclass(frozen=True)
class PoolEvent:
    """What came back from a slot: ``done`` (an ``AttemptResult``), ``failed`` or ``died`` (the process
    is gone; both an ``AttemptReport``)."""

    slot: int
    kind: str
    attempt: str
    report: AttemptResult | AttemptReport


class ExecutorPool:
    """``size`` warm executor processes, started at once and restarted when one dies."""

    def __init__(self, size: int, memory_cap: int = 0, env: dict | None = None) -> None:
        self.memory_cap = memory_cap
        self.env = dict(env or {})
        self.slots = [Slot(i) for i in range(max(1, size))]
        for slot in self.slots:
            self._start(slot)

    def _start(self, slot: Slot) -> None:
        """A fresh interpreter running ``mapred.task.child`` (no re-import of the user's ``__main__``)."""
        parent, child = socket.socketpair()
        env = {**_ONE_THREAD_BLAS, **os.environ, **self.env,
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        # a session of its own: a terminal's Ctrl-C goes to the runner, which stops its executors
        # itself (an executor still importing would otherwise print a KeyboardInterrupt traceback)
        proc = subprocess.Popen([sys.executable, "-m", "mapred.task.child", str(child.fileno())],
                                pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        child.close()
        slot.proc, slot.conn, slot.attempt, slot.jobs = proc, Connection(parent.detach()), None, set()

    def pids(self) -> list[int]:
        """The executor processes' pids."""
        return [s.proc.pid for s in self.slots if s.proc is not None]

    def send_job(self, slot: Slot, job_id: str, blob: bytes) -> None:
        """Give the slot's executor the job's code, once per executor life."""
        if job_id not in slot.jobs:
            slot.conn.send_bytes(wire.dumps(wire.PipeJob(job_id=job_id)))
            slot.conn.send_bytes(blob)
            slot.jobs.add(job_id)

    def drop_job(self, job_id: str) -> None:
        """Tell every executor holding the job's code to forget it."""
        for slot in self.slots:
            if job_id in slot.jobs:
                slot.jobs.discard(job_id)
                try:
                    slot.conn.send_bytes(wire.dumps(wire.PipeDrop(job_id=job_id)))
                except OSError:
                    pass

    def start_attempt(self, slot: Slot, job_id: str, blob: bytes, spec) -> None:
        """Run ``spec`` (a ``MapSpec`` or ``ReduceSpec``) on ``slot``, which must be idle.

        An idle executor may have died unseen (killed from outside): the pipe
        is then broken, and the attempt goes to a fresh process in the slot.
        """
        for tries in (1, 2):
            try:
                self.send_job(slot, job_id, blob)
                slot.attempt = spec.attempt
                slot.progress = None
                slot.conn.send_bytes(wire.dumps(wire.PipeRun(spec=spec)))
                return
            except OSError:
                slot.attempt = None
                if tries == 2:
                    raise
                log.warning("executor of slot %d was gone; starting a fresh one for %s", slot.index,
                            spec.attempt)
                self._stop(slot, hard=True)      # same incarnation: the attempt was never under way
                self._start(slot)

    def kill_attempt(self, slot: Slot) -> None:
        """Stop whatever the slot runs by killing its process; a fresh one takes its place."""
        self._stop(slot, hard=True)
        slot.incarnation += 1
        self._start(slot)

    @staticmethod
    def _stop(slot: Slot, hard: bool) -> None:
        if slot.proc is None:
            return
        if hard and slot.proc.poll() is None:
            slot.proc.kill()
        try:
            slot.proc.wait(5)
        except subprocess.TimeoutExpired:
            slot.proc.kill()
            slot.proc.wait(5)
        slot.conn.close()

    def poll(self, timeout: float, wake=None) -> list[PoolEvent]:
        """Wait up to ``timeout`` for attempts to finish or executors to die.

        ``wake`` (a readable ``Connection``) ends the wait early when it has
        data: how the local runner's driver hears of a newly submitted job.
        The caller drains it.
        """
        busy = [s for s in self.slots if s.attempt is not None]
        waitables = {s.conn: s for s in busy}
        extra = [wake] if wake is not None else []
        if not waitables:
            if extra:
                wait(extra, min(timeout, 0.05))
            else:
                time.sleep(min(timeout, 0.05))
            return []
        ready = wait(list(waitables) + extra, timeout)
        out: list[PoolEvent] = []
        seen: set = set()
        for r in ready:
            if r is wake:
                continue
            slot = waitables[r]
            if slot.index in seen:
                continue
            seen.add(slot.index)
            event = self._collect(slot)
            if event is not None:
                out.append(event)
        out += self._enforce_memory_cap()
        return out

    def _collect(self, slot: Slot) -> PoolEvent:
        attempt = slot.attempt
        try:
            while slot.conn.poll():
                msg = wire.loads(slot.conn.recv_bytes())
                if isinstance(msg, wire.PipeProgress):
                    if msg.attempt == slot.attempt:
                        slot.progress = (msg.fraction, msg.counters)
                    continue
                slot.attempt = None
                slot.progress = None
                if isinstance(msg, wire.PipeDone):
                    return PoolEvent(slot.index, "done", msg.attempt, msg.result)
                return PoolEvent(slot.index, "failed", msg.attempt, msg.report)
            return None      # only progress so far: the attempt runs on
        except (EOFError, OSError):
            pass
        except ProtocolError as exc:   # our own executor sent garbage: treat it as dead
            log.error("executor %s sent a bad message: %s", slot.worker_id, exc)
        try:
            code = slot.proc.wait(2)
        except subprocess.TimeoutExpired:
            code = None
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        self.kill_attempt(slot)
        return PoolEvent(slot.index, "died", attempt, AttemptReport(
            "ExecutorDied", f"executor process {how} while running {attempt}", attempt=attempt))

    def _enforce_memory_cap(self) -> list[PoolEvent]:
        if not self.memory_cap:
            return []
        out = []
        for slot in self.slots:
            if slot.attempt is None:
                continue
            try:
                rss = psutil.Process(slot.proc.pid).memory_info().rss
            except psutil.Error:
                continue
            if rss > self.memory_cap:
                attempt = slot.attempt
                self.kill_attempt(slot)
                out.append(PoolEvent(slot.index, "died", attempt, AttemptReport(
                    "MemoryCapExceeded", f"executor used {rss >> 20} MiB, over its cap of "
                    f"{self.memory_cap >> 20} MiB", attempt=attempt)))
        return out

    def close(self) -> None:
        """Stop every executor (asked first, killed by pid after two seconds)."""
        for slot in self.slots:
            try:
                slot.conn.send_bytes(wire.dumps(wire.PipeStop()))
            except OSError:
                pass
        deadline = time.monotonic() + 2
        for slot in self.slots:
            try:
                slot.proc.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self._stop(slot, hard=True)

