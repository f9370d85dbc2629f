"""Hostile probe jobs (after the MIT 6.5840 lab's test apps), importable by tests and JOBFILEs.

* ``crash_once``: kills its executor with ``os._exit`` the first time it sees a
  chosen record, then behaves — the retry must succeed.
* ``raise_on``: raises on a chosen record every time — the job must fail
  naming that record's offset.
* ``count_runs``: records every attempt that starts, so a test can see
  retries and speculative attempts while the output stays exact.
* ``overlap``: each map task notes when it ran, to prove tasks run in parallel.
"""
import os
import time

import mapred


def _marker_dir():
    return mapred.context().params["marker_dir"]


def crash_once_mapper(offset, line):
    marker = os.path.join(_marker_dir(), "crashed")
    if line == mapred.context().params["crash_line"] and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(13)
    for word in line.split():
        yield word, 1


def raise_on_mapper(offset, line):
    if line == mapred.context().params["bad_line"]:
        raise ValueError(f"cannot handle {line!r}")
    for word in line.split():
        yield word, 1


def count_runs_init():
    ctx = mapred.context()
    with open(os.path.join(_marker_dir(), ctx.attempt), "w"):
        pass
    return ()


def overlap_mapper(offset, line):
    ctx = mapred.context()
    start = time.time()
    time.sleep(float(ctx.params.get("sleep", 0.3)))
    with open(os.path.join(_marker_dir(), ctx.task_id), "w") as f:
        f.write(f"{start} {time.time()}")
    yield line, 1


def add(key, values):
    yield key, sum(values)


def segfault_once_mapper(offset, line):
    marker = os.path.join(_marker_dir(), "segfaulted")
    if not os.path.exists(marker):
        open(marker, "w").close()
        import ctypes
        ctypes.string_at(0)          # SIGSEGV: the executor process dies
    yield line, 1


def hog_memory_mapper(offset, line):
    block = bytearray(int(mapred.context().params["hog_bytes"]))
    for i in range(0, len(block), 4096):
        block[i] = 1                 # touch every page so RSS grows
    time.sleep(3)
    yield line, len(block)
