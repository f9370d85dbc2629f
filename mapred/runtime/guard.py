"""A start-up guard for ``mapred cluster up``: if the command dies before the cluster is up, stop it all.

``cluster up`` starts its daemons in their own sessions so they outlive it.
Killed (even by SIGKILL) half way through start-up, it would leave a
NameNode, DataNodes or workers running that no state file records.  So it
first starts this guard, detached: ``python -m mapred.runtime.guard PID
STATE_FILE``.  The guard notes every descendant of ``PID`` (with its start
time, so a reused pid is never touched) while ``PID`` lives; when ``PID`` is
gone, it exits quietly if ``STATE_FILE`` was written (the cluster is up and
recorded) and otherwise stops every process it noted, and every process
started since then that names a path under the cluster's directory (one
spawned between two looks).
"""
from __future__ import annotations

import os
import sys
import time

import psutil

POLL = 0.05


def guard(parent_pid: int, state_file: str) -> int:
    """Watch ``parent_pid``; returns how many processes were stopped after it died unrecorded."""
    from mapred.runtime.procs import kill_pids
    started = time.time()
    seen: dict[int, float] = {}
    try:
        parent = psutil.Process(parent_pid)
    except psutil.NoSuchProcess:
        return 0
    first = True
    while True:
        try:
            for child in parent.children(recursive=True):
                if child.pid != os.getpid():
                    seen.setdefault(child.pid, child.create_time())
            if parent.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        except psutil.Error:
            pass
        if first:               # the parent waits for this line before it starts anything
            print("watching", flush=True)
            first = False
        time.sleep(POLL)
    if os.path.exists(state_file):
        return 0
    seen.update(_started_under(os.path.dirname(os.path.abspath(state_file)), started))
    return kill_pids(list(seen), created=seen)


def _started_under(directory: str, since: float) -> dict[int, float]:
    """Processes started since ``since`` whose arguments name a path in ``directory``.

    Every daemon ``cluster up`` starts is given a path under its --dir, so
    this finds one even if it was spawned between two of the guard's looks.
    """
    prefix = directory.rstrip(os.sep) + os.sep
    found = {}
    for p in psutil.process_iter(["pid", "cmdline", "create_time"]):
        try:
            args = p.info["cmdline"] or []
            if p.info["create_time"] >= since - 1.0 and p.pid != os.getpid() and any(
                    str(a).startswith(prefix) for a in args):
                found[p.pid] = p.info["create_time"]
        except (psutil.Error, TypeError):
            continue
    return found


if __name__ == "__main__":
    sys.exit(0 if guard(int(sys.argv[1]), sys.argv[2]) >= 0 else 1)
