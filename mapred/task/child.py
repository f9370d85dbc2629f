"""The executor process: ``python -m mapred.task.child FD`` runs attempts sent over a pipe.

Kept apart from the pool (``task.pool``, the parent's side) so an executor
never re-imports the parent's ``__main__`` (user scripts need no
``if __name__ == "__main__"`` guard) and loads neither ``psutil`` nor the
pool.  Parent and executor speak the wire module's ``ex.*`` messages (never
pickle); job code arrives as raw bytes after ``PipeJob`` and is unpickled in
one place, ``load_job_code``.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from mapred.errors import ProtocolError
from mapred.net import wire
from mapred.task.spec import AttemptReport, MapSpec, ReduceSpec

MAX_JOBS = 8        # job codes kept at once; the oldest goes first


def load_job_code(blob: bytes):
    """The one place job code is unpickled: bytes from a job the master accepted."""
    import cloudpickle
    return cloudpickle.loads(blob)


def _watch_parent() -> None:
    """Exit as soon as the process that started this executor is gone.

    A SIGKILLed runner cannot stop its executors; one left alone would finish
    its attempt for nobody (and write to an output no one commits).  The
    check is ``getppid`` changing, every quarter second, on a daemon thread.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _send_or_exit(conn, data: bytes) -> None:
    """Send to the parent; a closed pipe means the parent is gone, so exit quietly (no traceback)."""
    try:
        conn.send_bytes(data)
    except OSError:          # BrokenPipeError, ConnectionResetError: nobody to report to
        os._exit(0)


def executor_main(conn) -> None:
    """Receive job code and attempt specs, run attempts, report; until ``PipeStop`` or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's to handle: it stops us
    _watch_parent()
    from mapred.task.attempt import AttemptFailure, run_attempt, set_progress_sink

    def progress(attempt: str, fraction: float, counters: dict) -> None:
        _send_or_exit(conn, wire.dumps(wire.PipeProgress(attempt=attempt, fraction=fraction, counters=counters)))

    set_progress_sink(progress)
    jobs: dict[str, Any] = {}
    load_errors: dict[str, str] = {}
    while True:
        try:
            msg = wire.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        except ProtocolError as exc:   # the parent is our own code: this is a bug, say so and go on
            print(f"executor: dropped a bad message: {exc}", file=sys.stderr, flush=True)
            continue
        if isinstance(msg, wire.PipeJob):
            _install_job(msg.job_id, conn.recv_bytes(), jobs, load_errors)
        elif isinstance(msg, wire.PipeDrop):
            jobs.pop(msg.job_id, None)
        elif isinstance(msg, wire.PipeRun) and isinstance(msg.spec, (MapSpec, ReduceSpec)):
            _send_or_exit(conn, wire.dumps(_run_one(msg.spec, jobs, load_errors, run_attempt, AttemptFailure)))
        elif isinstance(msg, wire.PipeStop):
            return


def _install_job(job_id: str, blob: bytes, jobs: dict, load_errors: dict) -> None:
    try:
        jobs[job_id] = load_job_code(blob)
        load_errors.pop(job_id, None)
    except Exception as exc:  # noqa: BLE001 - reported with the first attempt
        name = getattr(exc, "name", None)
        hint = f" (module {name!r} is not importable here)" if name else ""
        load_errors[job_id] = f"cannot load the job's code{hint}: {type(exc).__name__}: {exc}"
    while len(jobs) > MAX_JOBS:
        jobs.pop(next(iter(jobs)))


def _run_one(spec, jobs: dict, load_errors: dict, run_attempt, AttemptFailure) -> wire.Message:
    job = jobs.get(spec.job_id)
    if job is None:
        message = load_errors.get(spec.job_id, f"job {spec.job_id} code was never sent")
        return wire.PipeFailed(attempt=spec.attempt, report=AttemptReport(
            "JobCodeError", message, task=spec.task, attempt=spec.attempt, fatal=True))
    try:
        return wire.PipeDone(attempt=spec.attempt, result=run_attempt(job, spec))
    except AttemptFailure as failure:
        return wire.PipeFailed(attempt=spec.attempt, report=failure.report)


if __name__ == "__main__":
    executor_main(Connection(int(sys.argv[1])))
