"""The master's durable memory: job submissions, task commits and job ends, fsynced before they count.

``mapred master --data-dir D`` keeps ``D/journal``: records of
``u32 length | u32 crc32c | msgpack`` (the NameNode's edit-log framing).  A
submission is on disk before the client hears ``JobAccepted``; a task's
commit is journaled right after its output was renamed into place (a crash
in between re-runs the task, whose commit replaces the part: nothing is
lost or doubled); a job's end after its ``_SUCCESS`` was written.  A torn
tail (the crash hit mid-write) fails its CRC and is cut off on load: it was
never acknowledged.

On start the journal is read into ``Replay`` (the master's epoch, every
unfinished job with its committed tasks, the last finished jobs) and
rewritten compactly: finished jobs keep only their end record (with what
``mapred job list/status`` shows: owner, times, final progress, counters),
and only the last ``keep_ended`` of them, no older than ``keep_seconds``
(the core's own job history bounds), so the file does not grow without
bound across restarts.
"""
from __future__ import annotations

import logging
import os
import struct
import time
from dataclasses import dataclass, field

import crc32c
import msgpack

log = logging.getLogger(__name__)

_HEAD = struct.Struct("<II")
MAX_RECORD = 1 << 30
KEEP_ENDED = 100          # finished jobs remembered across restarts (for status queries)
KEEP_SECONDS = 86400.0    # ... for no longer than this after they ended


@dataclass
class JournaledJob:
    """A job as the journal knows it: its submission, its committed tasks (last commit wins), its end."""

    submit: dict
    commits: dict = field(default_factory=dict)     # task id text -> commit record
    end: dict | None = None


@dataclass
class Replay:
    """What a restarted master takes over."""

    epoch: int = 0
    jobs: dict = field(default_factory=dict)        # job id -> JournaledJob, in submission order

    def unfinished(self) -> list[JournaledJob]:
        return [j for j in self.jobs.values() if j.end is None]

    def ended(self) -> list[dict]:
        return [j.end for j in self.jobs.values() if j.end is not None]


class MasterJournal:
    """Append-only, fsynced log of the master's jobs in ``directory``."""

    def __init__(self, directory: str, sync: bool = True, keep_ended: int = KEEP_ENDED,
                 keep_seconds: float = KEEP_SECONDS) -> None:
        self.dir = os.path.abspath(directory)
        self.keep_ended = max(0, keep_ended)
        self.keep_seconds = keep_seconds
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(self.dir, "journal")
        self.sync = sync
        self._f = None

    # ------------------------------------------------------------------ start
    def open(self, now: float | None = None) -> Replay:
        """Read every intact record, start a new epoch, and rewrite the log compactly.

        ``now`` (wall-clock seconds, default the time) ages finished jobs out.
        """
        replay = Replay()
        for record in self._records():
            self._apply(replay, record)
        replay.epoch += 1
        self._rewrite(replay, time.time() if now is None else now)
        return replay

    def _records(self):
        if not os.path.exists(self.path):
            return
        with open(self.path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + _HEAD.size <= len(data):
            length, crc = _HEAD.unpack_from(data, pos)
            body = data[pos + _HEAD.size: pos + _HEAD.size + length]
            if length > MAX_RECORD or len(body) != length or crc32c.crc32c(body) != crc:
                log.warning("cutting a torn master journal tail at byte %d of %d", pos, len(data))
                return
            try:
                yield msgpack.unpackb(body, raw=False, strict_map_key=False)
            except Exception:  # noqa: BLE001 - a record that does not decode ends the readable log
                log.warning("unreadable master journal record at byte %d; stopping there", pos)
                return
            pos += _HEAD.size + length

    @staticmethod
    def _apply(replay: Replay, r: dict) -> None:
        kind = r.get("t")
        if kind == "epoch":
            replay.epoch = max(replay.epoch, int(r["n"]))
        elif kind == "submit":
            replay.jobs.setdefault(r["job_id"], JournaledJob(r))
        elif kind == "commit":
            job = replay.jobs.get(r["job_id"])
            if job is not None and job.end is None:
                job.commits[r["task"]] = r
        elif kind == "end":
            job = replay.jobs.get(r["job_id"])
            if job is None:
                replay.jobs[r["job_id"]] = job = JournaledJob({"job_id": r["job_id"]})
            job.end, job.commits = r, {}
            job.submit = {"job_id": r["job_id"]}        # the code and splits are not needed any more

    def _rewrite(self, replay: Replay, now: float) -> None:
        """Epoch, the last finished jobs' ends, then every unfinished job; atomically replaces the log."""
        ended = [j for j in replay.jobs.values() if j.end is not None
                 and now - float(j.end.get("finished") or now) <= self.keep_seconds]
        ended = ended[-self.keep_ended:] if self.keep_ended else []
        keep = {j.submit["job_id"] for j in ended} | {j.submit["job_id"] for j in replay.unfinished()}
        replay.jobs = {k: v for k, v in replay.jobs.items() if k in keep}
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(_frame({"t": "epoch", "n": replay.epoch}))
            for j in replay.jobs.values():
                if j.end is not None:
                    f.write(_frame(j.end))
                else:
                    f.write(_frame(j.submit))
                    for c in j.commits.values():
                        f.write(_frame(c))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.dir)
        self._f = open(self.path, "ab")

    # ------------------------------------------------------------------ records
    def submitted(self, job_id: str, submit: bytes, blob: bytes, submitted: float) -> None:
        """``submit``: the client's ``SubmitJob`` as ``wire.dumps`` wrote it; ``blob``: the job's code."""
        self._append({"t": "submit", "job_id": job_id, "submit": submit, "blob": blob, "submitted": submitted})

    def committed(self, job_id: str, task: str, attempt: str, worker: str, output, counters: dict) -> None:
        self._append({"t": "commit", "job_id": job_id, "task": task, "attempt": attempt, "worker": worker,
                      "output": output, "counters": counters})

    def ended(self, job_id: str, name: str, state: str, error: dict, counters: dict, output: str,
              **summary) -> None:
        """A job's end; ``summary`` (owner, submitter, submitted, finished, progress ...) is what
        ``mapred job list/status`` shows of it after a restart."""
        self._append({**summary, "t": "end", "job_id": job_id, "name": name, "state": state, "error": error,
                      "counters": counters, "output": output})

    def _append(self, record: dict) -> None:
        """Write, flush and fsync one record: when this returns, a kill -9 cannot lose it."""
        self._f.write(_frame(record))
        self._f.flush()
        if self.sync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _frame(record: dict) -> bytes:
    body = msgpack.packb(record, use_bin_type=True, default=str)
    return _HEAD.pack(len(body), crc32c.crc32c(body)) + body


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
