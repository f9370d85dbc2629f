"""A worker's data directory, swept: what a crashed predecessor left there goes at start.

A worker's map outputs live in ``DATA_DIR/<job id>/<attempt>/``.  They are
only worth keeping while the worker that made them serves them: a worker
starts with a fresh identity, so nothing from an earlier process on the same
directory can ever be fetched again.  The sweep removes job directories and
nothing else, so a data directory pointed at by mistake loses no other file.
"""
from __future__ import annotations

import logging
import os
import re
import shutil

log = logging.getLogger("mapred.worker")

# the shape of runtime.plan.new_job_id ("job" + a counter + 6 hex digits), and anything job-like
JOB_DIR = re.compile(r"job[0-9A-Za-z_-]+\Z")


def tree_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def sweep(data_dir: str) -> tuple[list[str], int]:
    """Remove every job directory under ``data_dir``; return (removed paths, bytes freed)."""
    removed, freed = [], 0
    try:
        names = sorted(os.listdir(data_dir))
    except FileNotFoundError:
        return removed, freed
    for name in names:
        path = os.path.join(data_dir, name)
        if JOB_DIR.match(name) and os.path.isdir(path) and not os.path.islink(path):
            freed += tree_bytes(path)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("start-up sweep of %s: removed %d job dir(s) of an earlier worker, %d bytes",
                 data_dir, len(removed), freed)
    return removed, freed
