"""Warm executor processes: each runs one attempt at a time, apart from the control loop.

A task that segfaults, calls ``os._exit`` or blows its memory cap kills only
its executor process; the pool reports that attempt as failed with the reason
and starts a fresh process in the slot.  Parent and executors speak msgpack
over a pipe (never pickle): job code travels as bytes and is unpickled in one
place, ``load_job_code``, inside the executor.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import msgpack
import psutil

log = logging.getLogger(__name__)

# executors are one per core: threaded BLAS in each would oversubscribe the cores and spin,
# so each gets one thread unless the user's environment says otherwise
_ONE_THREAD_BLAS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}


def load_job_code(blob: bytes):
    """The one place job code is unpickled: bytes from a job the master accepted (or the Spark runner's driver)."""
    import cloudpickle
    return cloudpickle.loads(blob)


def _executor_main(conn) -> None:
    """The executor process: receive job code and attempt specs, run attempts, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from mapred.task.attempt import AttemptFailure, run_attempt, set_progress_sink

    def progress(attempt: str, fraction: float, counters: dict) -> None:
        conn.send_bytes(msgpack.packb({"op": "progress", "attempt": attempt, "fraction": fraction,
                                       "counters": counters}, use_bin_type=True, default=str))

    set_progress_sink(progress)
    jobs: dict[str, Any] = {}
    load_errors: dict[str, str] = {}
    while True:
        try:
            msg = msgpack.unpackb(conn.recv_bytes(), raw=False, strict_map_key=False)
        except (EOFError, OSError):
            return
        op = msg.get("op")
        if op == "job":
            _install_job(msg, jobs, load_errors)
        elif op == "drop":
            jobs.pop(msg["job_id"], None)
        elif op == "run":
            spec = msg["spec"]
            reply = _run_one(spec, jobs, load_errors, run_attempt, AttemptFailure)
            conn.send_bytes(msgpack.packb(reply, use_bin_type=True, default=str))
        elif op == "stop":
            return


def _install_job(msg: dict, jobs: dict, load_errors: dict) -> None:
    try:
        jobs[msg["job_id"]] = load_job_code(msg["blob"])
        load_errors.pop(msg["job_id"], None)
    except Exception as exc:  # noqa: BLE001 - reported with the first attempt
        name = getattr(exc, "name", None)
        hint = f" (module {name!r} is not importable here)" if name else ""
        load_errors[msg["job_id"]] = f"cannot load the job's code{hint}: {type(exc).__name__}: {exc}"
    while len(jobs) > 8:
        jobs.pop(next(iter(jobs)))


def _run_one(spec: dict, jobs: dict, load_errors: dict, run_attempt, AttemptFailure) -> dict:
    job = jobs.get(spec["job_id"])
    if job is None:
        message = load_errors.get(spec["job_id"], f"job {spec['job_id']} code was never sent")
        return {"op": "failed", "attempt": spec["attempt"],
                "report": {"type": "JobCodeError", "message": message, "task": spec["task"],
                           "attempt": spec["attempt"], "fatal": True, "traceback": ""}}
    try:
        return {"op": "done", "attempt": spec["attempt"], "report": run_attempt(job, spec)}
    except AttemptFailure as failure:
        return {"op": "failed", "attempt": spec["attempt"], "report": failure.report}


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
        return f"exec-{self.index}.{self.incarnation}"


@dataclass(frozen=True)
class PoolEvent:
    """What came back from a slot: ``done``, ``failed`` or ``died`` (the process is gone)."""

    slot: int
    kind: str
    attempt: str
    report: dict


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
        proc = subprocess.Popen([sys.executable, "-m", "mapred.task.child", str(child.fileno())],
                                pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL)
        child.close()
        slot.proc, slot.conn, slot.attempt, slot.jobs = proc, Connection(parent.detach()), None, set()

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots if s.proc is not None]

    def send_job(self, slot: Slot, job_id: str, blob: bytes) -> None:
        if job_id not in slot.jobs:
            slot.conn.send_bytes(msgpack.packb({"op": "job", "job_id": job_id, "blob": blob}, use_bin_type=True))
            slot.jobs.add(job_id)

    def drop_job(self, job_id: str) -> None:
        for slot in self.slots:
            if job_id in slot.jobs:
                slot.jobs.discard(job_id)
                try:
                    slot.conn.send_bytes(msgpack.packb({"op": "drop", "job_id": job_id}))
                except OSError:
                    pass

    def start_attempt(self, slot: Slot, job_id: str, blob: bytes, spec: dict) -> None:
        """Run ``spec`` on ``slot`` (which must be idle)."""
        self.send_job(slot, job_id, blob)
        slot.attempt = spec["attempt"]
        slot.progress = None
        slot.conn.send_bytes(msgpack.packb({"op": "run", "spec": spec}, use_bin_type=True))

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

    def poll(self, timeout: float) -> list[PoolEvent]:
        """Wait up to ``timeout`` for attempts to finish or executors to die."""
        busy = [s for s in self.slots if s.attempt is not None]
        waitables = {s.conn: s for s in busy}
        if not waitables:
            time.sleep(min(timeout, 0.05))
            return []
        ready = wait(list(waitables), timeout)
        out: list[PoolEvent] = []
        seen: set = set()
        for r in ready:
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
                msg = msgpack.unpackb(slot.conn.recv_bytes(), raw=False, strict_map_key=False)
                if msg["op"] == "progress":
                    if msg.get("attempt") == slot.attempt:
                        slot.progress = (float(msg["fraction"]), msg["counters"])
                    continue
                slot.attempt = None
                slot.progress = None
                return PoolEvent(slot.index, msg["op"], msg["attempt"], msg["report"])
            return None      # only progress so far: the attempt runs on
        except (EOFError, OSError):
            pass
        try:
            code = slot.proc.wait(2)
        except subprocess.TimeoutExpired:
            code = None
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        self.kill_attempt(slot)
        return PoolEvent(slot.index, "died", attempt,
                         {"type": "ExecutorDied", "message": f"executor process {how} while running {attempt}",
                          "attempt": attempt, "fatal": False, "traceback": ""})

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
                out.append(PoolEvent(slot.index, "died", attempt, {
                    "type": "MemoryCapExceeded", "attempt": attempt, "fatal": False, "traceback": "",
                    "message": f"executor used {rss >> 20} MiB, over its cap of {self.memory_cap >> 20} MiB"}))
        return out

    def close(self) -> None:
        for slot in self.slots:
            try:
                slot.conn.send_bytes(msgpack.packb({"op": "stop"}))
            except OSError:
                pass
        deadline = time.monotonic() + 2
        for slot in self.slots:
            try:
                slot.proc.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self._stop(slot, hard=True)

