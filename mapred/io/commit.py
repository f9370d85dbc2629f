"""The output commit protocol: attempts write under ``_temporary``; the master's choice is renamed in.

An attempt writes ``OUT/_temporary/<attempt>/part-NNNNN``.  When the master
decides that attempt is its task's first success, ``commit_task`` renames the
part file to ``OUT/part-NNNNN``; losers and failures are deleted.  Only after
every task is committed does ``commit_job`` write ``_SUCCESS`` and remove
``_temporary`` — so output without ``_SUCCESS`` is never mistaken for complete.
"""
from __future__ import annotations

import json
import logging
import os

from mapred.errors import MapredError, OutputExistsError
from mapred.io.fs import HOSTNAME, get_fs
from mapred.io.outputs import SUCCESS, TEMPORARY, temp_dir, write_success

log = logging.getLogger(__name__)


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite``; then make the directory fresh.

    An output left by a local run that was SIGKILLed (no ``_SUCCESS``, and the
    process that claimed it is gone) is debris, not data: it is replaced.
    """
    fs = get_fs(output)
    if fs.exists(output):
        if not overwrite and not abandoned(output):
            raise OutputExistsError(f"output path {output!r} already exists (pass --overwrite to replace it)")
        if not overwrite:
            log.warning("removing %s: left by a killed run (%s)", output, _owner_text(output))
        fs.delete(output, recursive=True)
    fs.makedirs(fs.join(output, TEMPORARY))


OWNER = "_owner.json"


def claim_output(output: str) -> None:
    """Record this process as the writer of ``output`` (in ``_temporary``, so commit removes it).

    Only a runner whose death ends its job claims an output (the local
    runner): a cluster job outlives its client and must never be taken
    for debris.
    """
    import psutil
    fs = get_fs(output)
    me = {"host": HOSTNAME, "pid": os.getpid(), "created": psutil.Process().create_time()}
    with fs.open_write(fs.join(output, TEMPORARY, OWNER)) as f:
        f.write(json.dumps(me).encode())


def _owner(output: str) -> dict | None:
    fs = get_fs(output)
    try:
        with fs.open_read(fs.join(output, TEMPORARY, OWNER)) as f:
            return json.loads(f.read())
    except (OSError, ValueError, MapredError):
        return None


def _owner_text(output: str) -> str:
    o = _owner(output) or {}
    return f"pid {o.get('pid')} on {o.get('host')}"


def abandoned(output: str) -> bool:
    """True for an uncommitted output whose claiming process on this host no longer runs."""
    import psutil
    if is_committed(output):
        return False
    o = _owner(output)
    if not o or o.get("host") != HOSTNAME:
        return False
    try:
        return abs(psutil.Process(int(o["pid"])).create_time() - float(o["created"])) > 1.0
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def commit_task(output: str, attempt: str, files: list[str]) -> list[str]:
    """Move an attempt's part files into the output directory; returns the final paths."""
    fs = get_fs(output)
    src_dir = temp_dir(output, attempt)
    final = []
    for name in files:
        dst = fs.join(output, name)
        if fs.exists(dst):
            fs.delete(dst)
        fs.rename(fs.join(src_dir, name), dst)
        final.append(dst)
    fs.delete(src_dir, recursive=True)
    return final


def discard_task(output: str, attempt: str) -> None:
    """Delete an attempt's temporary output (a loser, a failure)."""
    fs = get_fs(output)
    fs.delete(temp_dir(output, attempt), recursive=True)


def commit_job(output: str, info: dict) -> None:
    """Write ``_SUCCESS`` and remove ``_temporary``: the output is complete."""
    fs = get_fs(output)
    fs.delete(fs.join(output, TEMPORARY), recursive=True)
    write_success(output, info)


def abort_job(output: str) -> None:
    """A failed job leaves no ``_SUCCESS`` and no temporary files; committed parts are removed too."""
    fs = get_fs(output)
    if fs.exists(output):
        fs.delete(output, recursive=True)


def is_committed(output: str) -> bool:
    """Whether the output has its ``_SUCCESS`` mark."""
    fs = get_fs(output)
    return fs.exists(fs.join(output, SUCCESS))
