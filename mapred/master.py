"""The master process: a thin ROUTER loop around the scheduling core (``scheduler.MasterState``).

Receive a message, decode it (garbage is logged and dropped), turn it into a
core event, feed it; the shared interpreter of actions (``runtime.shell``)
carries out what the core decides through this master's backend methods:
send assignments and kills to workers, commit or discard attempt output,
commit and finish jobs.  A tick every
``TICK`` seconds lets the core notice silent workers and stragglers.  The
master plans nothing itself — clients send splits, settings and the job's
code as bytes, which the master forwards to workers and never unpickles.

Workers and clients share the one ROUTER socket; a worker's routing id is
``worker_id/session``, fresh for every session of the worker, so a worker
that reconnects is never confused with (or shadowed by) its old connection.
With ``data_dir`` the master journals submissions, task commits and job ends
(``runtime.journal``), binds the port it had before, and on start takes over
the unfinished jobs: committed tasks are kept, the rest run again.  State for ``mapred job status`` (tasks, attempts, where they ran,
errors) is read straight from the core, so it cannot disagree with what the
scheduler believes.

Who may ask what (docs/security.md): every message comes with the principal
its key proved (None on an unkeyed, loopback-only master).  Worker messages
are taken only from worker keys, everything else only from people; a job
records its submitter, and only that user or an admin may see, kill or read
it.  Each job gets a shuffle token that its attempts carry, so a worker's
shuffle server serves the job's map output only to the job's reducers.  An
output that already holds files is refused before anything runs.  Refusals
are logged with the principal and counted (``refusals`` in ``mc.jobs``).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace

import zmq

from mapred import config as configmod
from mapred.core import actions as act
from mapred.core.dispatch import handler_table
from mapred.core import events as ev
from mapred.core.scaling import DecisionLog
from mapred.net import wire
from mapred.runtime.plan import JobPlan, JobSettings
from mapred.runtime.status import job_status, job_summary
from mapred.runtime.journal import MasterJournal
from mapred.runtime.shell import Shell, make_core
from mapred.io import commit
from mapred.net.transport import (
    bind, make_socket, recv_peer, say_if_unkeyed, send, stop_authenticator, zap_refusals)
from mapred.errors import MapredError, ProtocolError
from mapred.security import policy, tokens
from mapred.security.principals import Role
from mapred.security.refusals import Refusals
from mapred.task.spec import NO_JOB_CODE, REFUSALS, AttemptReport
from mapred.types import AttemptId
from mapred.version import __version__

log = logging.getLogger("mapred.master")
TICK = 0.25
MAX_LOG_LINES = 5000
WORKER_MESSAGES = (wire.WorkerRegister, wire.WorkerBeat, wire.AttemptDone, wire.AttemptFail)


@dataclass
class WorkerInfo:
    """What the master knows of a registered worker beyond the core: its addresses, pid and the jobs whose code it holds."""

    worker_id: str
    host: str
    slots: int
    memory: int
    shuffle_addr: str
    pid: int
    joined: float
    session: int = 0
    code_sent: set = field(default_factory=set)
    route: bytes = b""                 # the routing id of its current session


@dataclass
class JobRecord:
    """What the master keeps about a job beyond the core: its plan, timing and log."""

    plan: JobPlan
    submitted: float
    finished: float | None = None
    lines: list = field(default_factory=list)
    owner: str = "local"          # the submitter's principal name
    submitter: str = ""            # who the client says submitted (the service shows it)

    def log(self, text: str) -> None:
        """Append a timestamped line to the job's log (bounded by ``MAX_LOG_LINES``)."""
        if len(self.lines) < MAX_LOG_LINES:
            self.lines.append(f"{time.time() - self.submitted:9.3f}s {text}")


class Master:
    """Owns the ROUTER socket, the core, the plans of submitted jobs and the known workers."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, config=None, namenode: str = "",
                 data_dir: str = "") -> None:
        self.config = config or configmod.load()
        self.namenode = namenode
        self.core = make_core(self.config)
        self.shell = Shell(self.core, self)
        self._handlers = handler_table(self, "_on_", wire.registered().values())
        self.ctx = zmq.Context()
        self.sock = make_socket(self.ctx, zmq.ROUTER)
        self.journal = MasterJournal(data_dir, keep_ended=self.config.job_history,
                                     keep_seconds=self.config.job_history_seconds) if data_dir else None
        self.port = bind(self.sock, host, port or _recorded_port(data_dir))
        self.addr = f"tcp://{host}:{self.port}"
        self.workers: dict[str, WorkerInfo] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.ended: dict[str, dict] = {}       # jobs that ended before a restart: their last status
        self.scratch = tempfile.mkdtemp(prefix="mapred-master-")
        self.job_key = tokens.new_key()     # signs each job's shuffle token
        self.refusals = Refusals("master", log)
        self.scaling = DecisionLog()        # the autoscaler's decisions, with their reasons
        self.peer = None                    # the principal of the message being handled
        self.running = True
        self.epoch = 0
        log.info("master %s at %s", __version__, self.addr)
        say_if_unkeyed("the master")
        if self.journal is not None:
            _record_port(data_dir, self.port)
            self._recover(self.journal.open())

    # ------------------------------------------------------------------ recovery
    def _recover(self, replay) -> None:
        """Take over the journal's jobs: ended ones answer status queries, unfinished ones run on.

        Every task of a recovered job numbers its attempts from ``(epoch - 1) *
        EPOCH_ATTEMPTS``, so nothing an earlier life started (a late report,
        a temporary directory) can be taken for an attempt of this one.
        """
        self.epoch = replay.epoch
        for end in replay.ended():
            self.ended[end["job_id"]] = end
        for jj in replay.unfinished():
            sub = jj.submit
            plan = self._plan(wire.loads(bytes(sub["submit"])), [bytes(sub["blob"])])   # validated again
            self.jobs[plan.job_id] = rec = JobRecord(plan, float(sub.get("submitted", time.time())))
            rec.log(f"recovered after a master restart (epoch {self.epoch}): {len(jj.commits)} committed "
                    f"task(s) kept, the rest run again")
            now = time.monotonic()
            events = [dataclasses.replace(plan.submitted_event(), now=now,
                                          attempt_base=self._attempt_base())]
            for c in jj.commits.values():
                events.append(ev.TaskRecovered(AttemptId.parse(c["attempt"]), c["worker"], c["output"],
                                               c.get("counters") or {}, now))
            self._step(*events)
        if self.jobs:
            log.info("recovered %d unfinished job(s) from the journal (epoch %d)", len(self.jobs), self.epoch)

    # ------------------------------------------------------------------ loop
    def serve(self) -> None:
        """Run the loop (ticks and messages) until ``stop``; closes the socket at the end."""
        next_tick = 0.0
        try:
            while self.running:
                now = time.monotonic()
                if now >= next_tick:
                    self._step(ev.Tick(now))
                    self._forget()
                    next_tick = now + TICK
                self._serve_one(max(0.0, next_tick - time.monotonic()))
        finally:
            self.close()

    def _serve_one(self, timeout: float) -> None:
        try:
            got = recv_peer(self.sock, timeout, routed=True)
        except ProtocolError as exc:
            self.refusals.refuse("a peer", "bad_message", str(exc))
            return
        if got is None:
            return
        route, msg, data, self.peer = got
        try:
            self._dispatch(route, msg, data)
        except Exception:  # noqa: BLE001 - one bad request must never stop the master
            log.error("error handling %s:\n%s", msg.TYPE, traceback.format_exc())
            self._reply(route, wire.Error(rid=msg.rid, kind="InternalError",
                                          message=f"master failed handling {msg.TYPE}"))

    def _reply(self, route, msg: wire.Message, *data) -> None:
        send(self.sock, msg, *data, route=route)

    def _to_worker(self, worker_id: str, msg: wire.Message, *data) -> None:
        info = self.workers.get(worker_id)
        send(self.sock, msg, *data, route=[info.route if info is not None and info.route else worker_id.encode()])

    def _attempt_base(self) -> int:
        """First attempt number in this life: 0 in the first, ``EPOCH_ATTEMPTS`` more in each restart."""
        return max(0, self.epoch - 1) * EPOCH_ATTEMPTS

    def _step(self, *events) -> None:
        """Feed events to the core; the shell carries out its actions through this master's methods.

        A worker the core declares lost in the step is written into the log of
        every job under way, so ``mapred job logs`` says why attempts re-ran.
        """
        alive = {w for w in self.workers if self.core.worker_alive(w)}
        self.shell.step(*events)
        for worker_id in sorted(alive):
            if not self.core.worker_alive(worker_id):
                for rec in self.jobs.values():
                    if rec.finished is None:
                        rec.log(f"worker {worker_id} lost (no heartbeat within {self.config.dead_timeout:g}s, "
                                f"or it re-registered): its attempts run again elsewhere")

    # ------------------------------------------------------------------ messages
    def _refuse(self, route, msg, reason: str, detail: str) -> None:
        why = self.refusals.refuse(self.peer or "an unkeyed peer", reason, detail)
        self._reply(route, wire.Error(rid=msg.rid, kind="PermissionDenied", message=why))

    def _permitted(self, route, msg) -> bool:
        """Worker messages from worker keys only; requests from people only."""
        if isinstance(msg, WORKER_MESSAGES):
            if policy.may_act_as(self.peer, Role.WORKER):
                return True
            self._refuse(route, msg, "wrong_role", f"{msg.TYPE} needs a worker key")
            return False
        if policy.may_submit(self.peer):
            return True
        self._refuse(route, msg, "wrong_role", f"{msg.TYPE} needs a user or admin key")
        return False

    def _owned(self, route, msg, rec) -> bool:
        """Whether the asker may see or touch ``rec``; a stranger's job looks like no job at all."""
        if policy.may_act_on(self.peer, rec.owner):
            return True
        self.refusals.refuse(self.peer, "not_owner", f"{msg.TYPE} of job {msg.job_id}")
        self._reply(route, _unknown(msg))
        return False

    def _dispatch(self, route, msg, data) -> None:
        if not self._permitted(route, msg):
            return
        claimed = getattr(msg, "worker_id", None)
        if claimed is not None and not self._route_ok(route, msg, claimed):
            # a forgery, or a late message of a session the worker has left: no answer either way
            log.warning("dropped %s claiming to come from worker %s over another connection", msg.TYPE, claimed)
            return
        handler = self._handlers.get(type(msg))
        if handler is None:
            self._reply(route, wire.Error(rid=msg.rid, kind="ProtocolError",
                                          message=f"the master does not serve {msg.TYPE}"))
            return
        handler(route, msg, data)

    def _on_WorkerRegister(self, route, msg: wire.WorkerRegister, data) -> None:
        if msg.version != __version__:
            why = (f"worker {msg.worker_id} runs mapred {msg.version} but the master runs mapred "
                   f"{__version__}; refusing its registration")
            log.warning(why)
            self._reply(route, wire.Error(rid=msg.rid, kind="VersionMismatch", message=why))
            return
        now = time.monotonic()
        old = self.workers.get(msg.worker_id)
        if old is not None and old.session == msg.session and self._alive(msg.worker_id):
            # a registration repeated while the first answer was in flight: same worker, same life
            self._reply(route, wire.Ok(rid=msg.rid, info={"registered": msg.worker_id}))
            return
        self.workers[msg.worker_id] = WorkerInfo(msg.worker_id, msg.host, msg.slots, msg.memory,
                                                 msg.shuffle_addr, msg.pid, now, msg.session,
                                                 route=bytes(route[-1]))
        log.info("worker %s joined: host %s, %d slots", msg.worker_id, msg.host, msg.slots)
        self._reply(route, wire.Ok(rid=msg.rid, info={"registered": msg.worker_id}))
        self._step(ev.WorkerJoined(msg.worker_id, msg.host, msg.slots, now))

    def _route_ok(self, route, msg, claimed: str) -> bool:
        """A worker speaks over its session's routing id: ``worker_id/session`` (or, older, ``worker_id``)."""
        if not route:
            return False
        rid = bytes(route[-1])
        if isinstance(msg, wire.WorkerRegister):
            return rid in (claimed.encode(), f"{claimed}/{msg.session}".encode())
        info = self.workers.get(claimed)
        return info is not None and rid == info.route

    def _alive(self, worker_id: str) -> bool:
        return self.core.worker_alive(worker_id) and worker_id in self.workers

    def _on_WorkerBeat(self, route, msg: wire.WorkerBeat, data) -> None:
        if not self._alive(msg.worker_id):
            self._reply(route, wire.Reregister(reason=f"the master does not know {msg.worker_id} as alive"))
            return
        self._reply(route, wire.Ok(rid=msg.rid))
        running = tuple(aid for aid in map(self._attempt_id, msg.running) if aid is not None)
        # the core reconciles the list: kills what nobody asked for, fails assignments that were lost
        self._step(ev.WorkerHeartbeat(msg.worker_id, time.monotonic(), _progress(msg.progress), running))

    def _on_AttemptDone(self, route, msg: wire.AttemptDone, data) -> None:
        aid = self._attempt_id(msg.attempt)
        if aid is None:
            return
        if not self._alive(msg.worker_id):
            self._reply(route, wire.Reregister(reason="report from a worker the master declared dead"))
        self._note(aid, f"{aid} succeeded on {msg.worker_id}")
        self._step(ev.AttemptSucceeded(aid, msg.worker_id, dict(msg.output), dict(msg.counters),
                                       tuple(msg.cached), time.monotonic()))

    def _on_AttemptFail(self, route, msg: wire.AttemptFail, data) -> None:
        aid = self._attempt_id(msg.attempt)
        if aid is None:
            return
        report = msg.report
        if not isinstance(report, AttemptReport):
            log.warning("dropped a failure report of %s that is a %s, not an attempt report", aid,
                        type(report).__name__)
            return
        if report.type in REFUSALS:
            self._refused(aid, msg.worker_id, report)
            return
        self._note(aid, f"{aid} failed on {msg.worker_id}: {report.type}: {report.message}\n"
                        f"{report.traceback}".rstrip())
        if report.fetch_failed_map is not None:
            self._step(ev.FetchFailed(aid, report.fetch_failed_map, report.message))
        self._step(ev.AttemptFailed(aid, msg.worker_id, report.as_error(), report.fatal, time.monotonic()))

    def _refused(self, aid: AttemptId, worker_id: str, report: AttemptReport) -> None:
        """The worker would not start ``aid``: place it again (with the job's code, if that was missing)."""
        info = self.workers.get(worker_id)
        if report.type == NO_JOB_CODE and info is not None:
            info.code_sent.discard(aid.task.job)      # the assignment that carried it was lost
        self._note(aid, f"{aid} refused by {worker_id} ({report.message}); placed again, not counted as a failure")
        self._step(ev.AttemptRefused(aid, worker_id, report.message, time.monotonic()))

    @staticmethod
    def _attempt_id(text: str):
        try:
            return AttemptId.parse(text)
        except (ValueError, KeyError):
            log.warning("dropped a report about malformed attempt id %r", text)
            return None

    def _note(self, aid: AttemptId, text: str) -> None:
        rec = self.jobs.get(aid.task.job)
        if rec is not None:
            rec.log(text)

    # ------------------------------------------------------------------ client requests
    def _on_SubmitJob(self, route, msg: wire.SubmitJob, data) -> None:
        try:
            plan = self._plan(msg, data)
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(route, wire.Error(rid=msg.rid, kind="ConfigError", message=f"bad job submission: {exc}"))
            return
        try:
            commit.refuse_foreign_output(plan.output)     # before anything is written or deleted there
        except (MapredError, OSError) as exc:
            self.refusals.refuse(self.peer or "an unkeyed peer", "output_exists", str(exc))
            self._reply(route, wire.Error(rid=msg.rid, kind=type(exc).__name__, message=str(exc)))
            return
        owner = policy.submit_owner(self.peer, msg.submitter)   # the service names its HTTP user
        self.jobs[plan.job_id] = rec = JobRecord(plan, time.time(), owner=owner,
                                                       submitter=msg.submitter or policy.name_of(self.peer))
        rec.log(f"submitted {plan.job.name!r}: {len(plan.splits)} maps, {plan.job.num_reducers} reduces, "
                f"output {plan.output}")
        if self.journal is not None:      # on disk before the client hears it was accepted
            self.journal.submitted(plan.job_id, wire.dumps(dataclasses.replace(msg, rid=0)), plan.blob,
                                   rec.submitted)
        self._reply(route, wire.JobAccepted(rid=msg.rid, job_id=plan.job_id))
        self._step(dataclasses.replace(plan.submitted_event(), attempt_base=self._attempt_base()))

    def _plan(self, msg: wire.SubmitJob, data) -> JobPlan:
        if msg.job_id in self.jobs or msg.job_id in self.ended or not msg.job_id.isalnum():
            raise ValueError(f"job id {msg.job_id!r} is taken or not alphanumeric")
        if len(data) != 1:
            raise ValueError("the job's code must follow as exactly one data frame")
        if not isinstance(msg.settings, JobSettings):
            raise ValueError(f"settings are a {type(msg.settings).__name__}, not job settings")
        return JobPlan(msg.settings, msg.job_id, list(msg.splits), msg.output, bytes(data[0]), self.config,
                       os.path.join(self.scratch, msg.job_id))

    def _on_JobStatusRequest(self, route, msg: wire.JobStatusRequest, data) -> None:
        rec = self.jobs.get(msg.job_id)
        if rec is None and msg.job_id in self.ended:
            end = self.ended[msg.job_id]
            if not policy.may_act_on(self.peer, end.get("owner", "")):   # a stranger's job: no job at all
                self.refusals.refuse(self.peer, "not_owner", f"{msg.TYPE} of job {msg.job_id}")
                self._reply(route, _unknown(msg))
                return
            self._reply(route, wire.JobStatusReply(rid=msg.rid, status=_ended_status(end)))
            return
        if rec is None:
            self._reply(route, _unknown(msg))
            return
        if not self._owned(route, msg, rec):
            return
        status = dict(job_status(self.core, rec, msg.detail, self.workers), owner=rec.owner)
        self._reply(route, wire.JobStatusReply(rid=msg.rid, status=status))

    def _on_ListJobs(self, route, msg: wire.ListJobs, data) -> None:
        jobs = [_ended_status(end) for end in self.ended.values()      # before a restart, oldest first
                if policy.may_act_on(self.peer, end.get("owner", ""))]
        jobs += [dict(job_summary(self.core, rec), owner=rec.owner) for rec in self.jobs.values()
                 if policy.may_act_on(self.peer, rec.owner)]
        now = time.monotonic()
        workers = [{"worker_id": w.worker_id, "host": w.host, "slots": w.slots, "pid": w.pid,
                    "shuffle_addr": w.shuffle_addr, "alive": self._alive(w.worker_id), "memory": w.memory,
                    "running": self.core.running_on(w.worker_id),
                    "state": self.core.workers[w.worker_id].state if w.worker_id in self.core.workers
                    else "LOST", "needed_outputs": len(self.core.needed_outputs(w.worker_id)),
                    "heartbeat_age_s": round(now - self.core.workers[w.worker_id].last_seen, 3)
                    if w.worker_id in self.core.workers else None}
                   for w in self.workers.values()] if policy.may_act_on(self.peer, "") else []
        cluster = {"waiting_tasks": self.core.waiting_tasks()}
        if policy.may_act_on(self.peer, ""):
            cluster["scaling"] = self.scaling.describe()
        self._reply(route, wire.JobList(rid=msg.rid, jobs=jobs, workers=workers, cluster=cluster,
                                        refusals={**self.refusals.counts(), **zap_refusals(self.ctx)}))

    def _on_DrainWorker(self, route, msg: wire.DrainWorker, data) -> None:
        """``mapred worker drain``: no new tasks there; it leaves once nothing it holds is needed."""
        if not policy.may_act_on(self.peer, ""):
            self._refuse(route, msg, "not_admin", f"draining {msg.worker} needs an admin key")
            return
        hits = [w for w in self.workers if w == msg.worker or self.workers[w].shuffle_addr == msg.worker]
        if len(hits) != 1 or not self._alive(hits[0]):
            known = ", ".join(w for w in self.workers if self._alive(w)) or "none"
            self._reply(route, wire.Error(rid=msg.rid, kind="ConfigError",
                                          message=f"no live worker {msg.worker!r}; live: {known}"))
            return
        self._step(ev.WorkerDrainRequested(hits[0], msg.timeout, time.monotonic()))
        w = self.core.workers[hits[0]]
        self._reply(route, wire.Ok(rid=msg.rid, info={"worker_id": hits[0], "state": w.state,
                                                      "needed_outputs": len(self.core.needed_outputs(w.id))}))

    def _on_ScalingReport(self, route, msg: wire.ScalingReport, data) -> None:
        """The autoscaler tells what it decided and why; kept for the service's page and /metrics."""
        if not policy.may_act_on(self.peer, ""):
            self._refuse(route, msg, "not_admin", "scaling reports need an admin key")
            return
        knobs = {str(k)[:64]: v for k, v in list(msg.policy.items())[:32]
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}
        entry = {"action": msg.action, "reason": msg.reason[:500], "workers_before": msg.workers_before}
        entry.update({"count": msg.count} if msg.action == "grow" else {"worker": msg.worker[:200]})
        try:
            entry = self.scaling.record(entry, knobs, time.time())
        except ValueError as exc:
            self._reply(route, wire.Error(rid=msg.rid, kind="ProtocolError", message=str(exc)))
            return
        log.info("scaling decision %d: %s (%s)", entry["seq"], msg.action, entry["reason"])
        self._reply(route, wire.Ok(rid=msg.rid))

    def _on_KillJob(self, route, msg: wire.KillJob, data) -> None:
        rec = self.jobs.get(msg.job_id)
        if rec is None:
            self._reply(route, _unknown(msg))
            return
        if not self._owned(route, msg, rec):
            return
        rec.log(f"kill requested by {policy.name_of(self.peer)}: {msg.reason}")
        self._reply(route, wire.Ok(rid=msg.rid))
        self._step(ev.JobKillRequested(msg.job_id, msg.reason))

    def _on_JobLogs(self, route, msg: wire.JobLogs, data) -> None:
        rec = self.jobs.get(msg.job_id)
        if rec is None:
            self._reply(route, _unknown(msg))
            return
        if not self._owned(route, msg, rec):
            return
        lines = [line for line in rec.lines if not msg.task or msg.task in line]
        self._reply(route, wire.LogLines(rid=msg.rid, lines=lines))

    # ------------------------------------------------------------------ actions (the shell's backend)
    def assign(self, a: act.AssignAttempt) -> None:
        """Send the attempt's spec (and the job's code, the first time) to its worker."""
        rec = self.jobs[a.attempt.task.job]
        info = self.workers[a.worker_id]
        spec = replace(rec.plan.attempt_spec(a, "", self.scratch),
                       job_token=tokens.job_token(self.job_key, rec.plan.job_id))
        with_code = rec.plan.job_id not in info.code_sent
        rec.log(f"assign {a.attempt} to {a.worker_id} ({'speculative, ' if a.speculative else ''}"
                f"{a.locality} locality)")
        frames = [rec.plan.blob] if with_code else []
        self._to_worker(a.worker_id, wire.Assign(job_id=rec.plan.job_id, spec=spec, with_code=with_code), *frames)
        info.code_sent.add(rec.plan.job_id)

    def kill(self, a: act.KillAttempt) -> None:
        """Tell the worker to stop the attempt."""
        self._note(a.attempt, f"kill {a.attempt} on {a.worker_id}: {a.reason}")
        if a.worker_id in self.workers:
            self._to_worker(a.worker_id, wire.Kill(attempt=str(a.attempt), reason=a.reason))

    def commit_attempt(self, a: act.CommitAttempt) -> None:
        """Rename the attempt's part files into the job's output."""
        rec = self.jobs[a.attempt.task.job]
        rec.plan.apply_commit(a)
        rec.log(f"committed {a.attempt}")
        if self.journal is not None:      # after the rename: a crash in between re-runs the task
            self.journal.committed(rec.plan.job_id, str(a.attempt.task), str(a.attempt), a.worker_id,
                                   a.output, self._task_counters(a.attempt))

    def _task_counters(self, aid: AttemptId) -> dict:
        job = self.core.job(aid.task.job)
        return dict(job.tasks(aid.task.kind)[aid.task.index].counters) if job is not None else {}

    def commit_job(self, a: act.CommitJob) -> None:
        """Write the job's ``_SUCCESS`` (and a dataset's index)."""
        rec = self.jobs[a.job_id]
        rec.plan.commit_job(a)
        rec.log("committed the job's output")

    def discard(self, a: act.DiscardAttempt) -> None:
        """Remove the attempt's temporary output here and on its worker."""
        if a.reason:
            self._note(a.attempt, a.reason)
        rec = self.jobs.get(a.attempt.task.job)
        if rec is not None:
            rec.plan.apply_discard(a)
        if a.worker_id in self.workers:
            self._to_worker(a.worker_id, wire.Discard(attempt=str(a.attempt)))

    def retire(self, a: act.RetireWorker) -> None:
        log.info("worker %s DECOMMISSIONED: %s", a.worker_id, a.reason)
        self._to_worker(a.worker_id, wire.Retire(reason=a.reason))

    def finished(self, done: act.JobFinished) -> None:
        """Clean up after a job, tell workers to drop its code, forget jobs the core forgot."""
        rec = self.jobs[done.job_id]
        rec.finished = time.time()
        try:
            rec.plan.finish(done)
        finally:
            rec.log(f"job {done.state.value}" + (f": {done.error.get('message', '')}" if done.error else ""))
            if self.journal is not None:     # with what `mapred job list/status` shows after a restart
                summary = job_summary(self.core, rec)
                self.journal.ended(done.job_id, rec.plan.job.name, done.state.value, dict(done.error),
                                   dict(done.counters), rec.plan.output, owner=rec.owner,
                                   submitter=rec.submitter, submitted=rec.submitted, finished=rec.finished,
                                   progress=dict(summary["progress"], state=done.state.value),
                                   reducers=summary["reducers"], output_format=summary["output_format"])
            for info in self.workers.values():   # all: a worker may hold outputs of an earlier life's attempts
                self._to_worker(info.worker_id, wire.DropJob(job_id=done.job_id))
                info.code_sent.discard(done.job_id)
            rec.plan.blob = b""
            self._forget()

    def _forget(self) -> None:
        """Drop the records of finished jobs that left the core's bounded history (or, from before a
        restart, outlived it)."""
        for job_id in [j for j, rec in self.jobs.items() if rec.finished is not None]:
            if self.core.job(job_id) is None:
                del self.jobs[job_id]
        if self.ended:
            oldest = time.time() - self.config.job_history_seconds
            for job_id in [j for j, end in self.ended.items() if float(end.get("finished") or 0.0) < oldest]:
                del self.ended[job_id]

    # ------------------------------------------------------------------ shutdown
    def stop(self, *_args) -> None:
        """Ask the loop to end after the current message (a signal handler)."""
        self.running = False

    def close(self) -> None:
        """Close the socket and the ZeroMQ context."""
        if self.journal is not None:
            self.journal.close()
        self.sock.close(0)
        stop_authenticator(self.ctx)
        self.ctx.term()


def _progress(entries: list) -> tuple:
    """``((AttemptId, fraction, counters), ...)`` from a heartbeat's ``[[attempt, fraction(, counters)]]``.

    Malformed entries are skipped; counters that are not ``{group: {name: int}}`` are dropped.
    """
    out = []
    for entry in entries:
        try:
            attempt, fraction = entry[0], entry[1]
            counters = _counters(entry[2]) if len(entry) > 2 else {}
            out.append((AttemptId.parse(str(attempt)), min(1.0, max(0.0, float(fraction))), counters))
        except (ValueError, TypeError, KeyError, IndexError):
            continue
    return tuple(out)


def _counters(raw) -> dict:
    if not isinstance(raw, dict):
        return {}
    return {str(g): {str(k): int(v) for k, v in names.items() if isinstance(v, int)}
            for g, names in raw.items() if isinstance(names, dict)}


EPOCH_ATTEMPTS = 1000      # attempt numbers per master life: epoch e numbers from e * 1000


def _recorded_port(data_dir: str) -> int:
    """The port a master with this data dir had before (0 if none): its workers and clients use it."""
    if not data_dir:
        return 0
    try:
        with open(os.path.join(data_dir, "master.json")) as f:
            return int(json.load(f)["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _record_port(data_dir: str, port: int) -> None:
    tmp = os.path.join(data_dir, "master.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"port": port}, f)
    os.replace(tmp, os.path.join(data_dir, "master.json"))


def _ended_status(end: dict) -> dict:
    """The status (and list entry) of a job that ended before this master started, from its journal record."""
    return {"job_id": end["job_id"], "name": end.get("name", ""), "state": end["state"],
            "progress": end.get("progress") or {"state": end["state"]}, "output": end.get("output", ""),
            "submitted": end.get("submitted", 0.0), "finished": end.get("finished"),
            "submitter": end.get("submitter", ""), "owner": end.get("owner", ""),
            "reducers": end.get("reducers", 0), "output_format": end.get("output_format", ""),
            "counters": end.get("counters") or {}, "error": end.get("error") or {}}


def _unknown(msg) -> wire.Error:
    return wire.Error(rid=msg.rid, kind="UnknownJob", message=f"no job {msg.job_id!r} on this master")


def run(host: str = "127.0.0.1", port: int = 0, namenode: str = "", ready_file: str = "", data_dir: str = "",
        **settings) -> None:
    """Start a master and serve until SIGTERM/SIGINT; ``ready_file`` receives its address.

    ``settings`` override ``Config`` fields (``dead_timeout``, ``speculation`` ...).
    """
    master = Master(host, port, configmod.load(**settings), namenode=namenode, data_dir=data_dir)
    signal.signal(signal.SIGTERM, master.stop)
    signal.signal(signal.SIGINT, master.stop)
    if ready_file:
        tmp = f"{ready_file}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(master.addr + "\n")
        os.replace(tmp, ready_file)
    master.serve()
