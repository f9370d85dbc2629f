"""A client's handle on a running cluster: ``mapred.connect("tcp://H:P")``.

The client does the planning a master must not: it expands the inputs into
splits (with block locations), pickles the job's code, prepares the output
directory, and submits plain settings + splits + the code as one raw frame.
It then polls the master for status.  A master that does not answer within
``timeout`` seconds is a ``ClusterError`` — a dead or wrong address never
hangs the caller.

The same ``Job`` runs unchanged here and on the local runner: ``run`` has the
signature of ``LocalCluster.run`` and returns the same ``Result``.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time

import zmq

from mapred import config as configmod
from mapred.core import actions as act
from mapred.net import wire
from mapred.runtime.holds import PathHolds
from mapred.runtime.plan import JobPlan, job_error
from mapred.errors import ClusterError, ConfigError, MapredError
from mapred.io.fs import HOSTNAME, is_mrfs
from mapred.io.outputs import Result, temp_output
from mapred.net.transport import Backoff, RpcClient, stop_authenticator
from mapred.types import JobState

POLL = 0.2
log = logging.getLogger(__name__)


def _expect(reply, kind):
    msg, _ = reply
    if isinstance(msg, wire.Error):
        if msg.kind in ("UnknownJob", "ConfigError"):
            raise ConfigError(msg.message)
        raise ClusterError(f"{msg.kind}: {msg.message}")
    if not isinstance(msg, kind):
        raise ClusterError(f"the master answered {msg.TYPE}, expected {kind.TYPE}")
    return msg


class ClusterClient:
    """Submit jobs to, and query, the master at ``address``."""

    def __init__(self, address: str, timeout: float = 10.0, config=None, user: str | None = None,
                 grace: float | None = None) -> None:
        if not address.startswith("tcp://"):
            raise ConfigError(f"master address {address!r} must look like tcp://host:port")
        self.address = address
        self.user = user or submitting_user()
        self.timeout = timeout
        self.config = config or configmod.load()
        # how long a waiting wait() rides out a silent master (one restarting from its journal)
        self.grace = self.config.master_grace if grace is None else float(grace)
        self.ctx = zmq.Context()
        self.rpc = RpcClient(self.ctx, address, timeout)
        try:
            self.cluster_info()
        except ClusterError:
            self.close()
            raise ClusterError(f"no mapred master answered at {address} within {timeout:g}s") from None

    # ------------------------------------------------------------------ queries
    def _call(self, msg, kind, *data, retry: bool = True):
        try:
            return _expect(self.rpc.call(msg, *data, retry=retry), kind)
        except ClusterError as exc:
            if "did not answer" in str(exc):
                raise ClusterError(f"the master at {self.address} did not answer within "
                                   f"{self.timeout:g}s (is it running?)") from None
            raise

    def cluster_info(self) -> dict:
        """``{"jobs": [...], "workers": [...]}`` as the master sees them."""
        msg = self._call(wire.ListJobs(), wire.JobList)
        return {"jobs": msg.jobs, "workers": msg.workers, **msg.cluster}

    def jobs(self) -> list[dict]:
        """The master's summaries of its jobs (the bounded history included)."""
        return self.cluster_info()["jobs"]

    def workers(self, alive_only: bool = True) -> list[dict]:
        """The master's view of its workers: host, slots, liveness, running attempts."""
        return [w for w in self.cluster_info()["workers"] if w["alive"] or not alive_only]

    def status(self, job_id: str, detail: bool = False) -> dict:
        """A job's status dict (``detail``: every task and attempt)."""
        return self._call(wire.JobStatusRequest(job_id=job_id, detail=detail), wire.JobStatusReply).status

    def drain(self, worker: str, timeout: float = 0.0) -> dict:
        """Drain ``worker`` (id or shuffle address): ``{"worker_id", "state", "needed_outputs"}``."""
        msg = self._call(wire.DrainWorker(worker=worker, timeout=timeout), wire.Ok)
        return dict(msg.info)

    def report_scaling(self, decision: dict, policy: dict | None = None) -> None:
        """Tell the master an autoscaler's decision (``action``, ``reason``, ``count`` or ``worker``)."""
        self._call(wire.ScalingReport(action=decision["action"], reason=decision["reason"],
                                      count=int(decision.get("count", 0)), worker=decision.get("worker", ""),
                                      workers_before=int(decision.get("workers_before", 0)),
                                      policy=dict(policy or {})), wire.Ok, retry=False)

    def kill(self, job_id: str, reason: str = "killed by request") -> None:
        """Ask the master to kill a job."""
        self._call(wire.KillJob(job_id=job_id, reason=reason), wire.Ok)

    def logs(self, job_id: str, task: str = "") -> list[str]:
        """The job's log lines on the master (only those naming ``task`` if given)."""
        return self._call(wire.JobLogs(job_id=job_id, task=task), wire.LogLines).lines

    def handle(self, job_id: str, output: str = "") -> "JobHandle":
        """A handle on a job submitted earlier (by this or another client)."""
        return JobHandle(self, job_id, output or self.status(job_id)["output"])

    # ------------------------------------------------------------------ jobs
    def submit(self, job, inputs, output: str | None = None, *, overwrite: bool = False) -> "JobHandle":
        """Plan ``job`` over ``inputs`` here, hand it to the master, return at once."""
        if output is None:
            output, overwrite = temp_output(), True
        workers = self.workers()
        inputs, output = qualify(inputs), qualify([output])[0]
        check_visible(inputs, output, workers)
        slots = sum(int(w.get("slots", 1)) for w in workers)   # small local inputs: ~4 splits a slot
        plan = JobPlan.make(job, inputs, str(output), self.config, tempfile.gettempdir(), overwrite,
                            slots=max(1, slots))
        holds = PathHolds(plan.job_id, inputs, plan.output)
        holds.renew(time.monotonic())     # before the master sees it: no window for a cleanup run
        msg = wire.SubmitJob(job_id=plan.job_id, settings=plan.job, splits=list(plan.splits), output=plan.output,
                             submitter=self.user)
        try:
            accepted = self._call(msg, wire.JobAccepted, plan.blob, retry=False)
        except BaseException:
            holds.release()
            raise
        return JobHandle(self, accepted.job_id, plan.output, holds)

    def run(self, job, inputs, output: str | None = None, *, overwrite: bool = False, progress=None) -> Result:
        """Submit and wait; raise ``JobFailed`` / ``JobKilled`` like the local runner."""
        handle = self.submit(job, inputs, output, overwrite=overwrite)
        try:
            return handle.wait(progress=progress)
        except KeyboardInterrupt:
            handle.kill("the client was interrupted")
            raise

    def close(self) -> None:
        """Close the connection to the master."""
        self.rpc.close()
        stop_authenticator(self.ctx)
        self.ctx.term()

    def __enter__(self) -> "ClusterClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JobHandle:
    """One submitted job: ``status()``, ``wait()``, ``kill()``, ``counters()``, ``logs()``."""

    def __init__(self, client: ClusterClient, job_id: str, output: str, holds=None) -> None:
        self.client, self.job_id, self.output = client, job_id, output
        self.holds = holds          # the job's mrfs:// paths, held on their NameNodes while we wait
        self.started = time.monotonic()

    def status(self, detail: bool = False) -> dict:
        """This job's status dict."""
        return self.client.status(self.job_id, detail)

    def counters(self) -> dict:
        """This job's counters so far."""
        return self.status().get("counters", {})

    def logs(self, task: str = "") -> list[str]:
        """This job's log lines on the master."""
        return self.client.logs(self.job_id, task)

    def kill(self, reason: str = "killed by request") -> None:
        """Ask the master to kill this job."""
        self.client.kill(self.job_id, reason)

    def done(self) -> bool:
        """Whether the job reached a final state."""
        return JobState(self.status()["state"]).finished

    def wait(self, timeout: float | None = None, progress=None) -> Result:
        """Block until the job ends; its ``Result``, or the job's error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            st = self._status_within_grace()
            state = JobState(st["state"])
            if progress is not None:
                progress(st["progress"], st.get("counters", {}))
            if state.finished:
                if self.holds is not None:
                    self.holds.release()
                return self._result(st, state)
            if self.holds is not None:
                self.holds.renew(time.monotonic())
            if deadline is not None and time.monotonic() > deadline:
                raise MapredError(f"job {self.job_id} still {state.value} after {timeout:g}s")
            time.sleep(POLL)  # polling interval of a remote status, not synchronisation

    def _status_within_grace(self) -> dict:
        """The job's status, riding out a master that is silent for up to ``master_grace`` seconds.

        A master restarted from its journal knows the job again; until it
        answers, the client retries with backoff (the RPC layer reconnects).
        """
        grace = self.client.grace
        silent_since = None
        backoff = Backoff(base=0.2, cap=2.0)
        while True:
            try:
                return self.status()
            except ClusterError as exc:
                now = time.monotonic()
                silent_since = silent_since or now
                if now - silent_since > grace:
                    raise ClusterError(f"{exc} (waited {grace:g}s for it to come back)") from None
                log.warning("master %s not answering (%s); retrying", self.client.address, exc)
                time.sleep(backoff.next())

    def _result(self, st: dict, state: JobState) -> Result:
        counters = st.get("counters", {})
        if state != JobState.SUCCEEDED:
            raise job_error(self.job_id, act.JobFinished(self.job_id, state, st.get("error", {}), counters))
        return Result(self.output, counters, self.job_id, time.monotonic() - self.started)

    def __repr__(self) -> str:
        return f"JobHandle({self.job_id!r} on {self.client.address})"


def submitting_user() -> str:
    """Who submits: ``$MAPRED_USER``, else the login name (the owner the service shows jobs to)."""
    import getpass
    try:
        return os.environ.get("MAPRED_USER") or getpass.getuser()
    except (KeyError, OSError):      # no passwd entry for this uid (containers)
        return ""


def qualify(items) -> list:
    """Local paths made absolute against this client's working directory (Hadoop qualifies paths so).

    Workers run elsewhere, in their own directories: a relative path sent
    as typed would be read, or written, relative to theirs.  Text paths,
    record files (``mapred.records``) and array datasets alike.
    """
    import dataclasses

    from mapred.io.datasets import ArrayDataset
    from mapred.io.inputs import RecordInput, _as_list
    out = []
    for item in _as_list(items):
        if isinstance(item, RecordInput):
            item = RecordInput(tuple(_absolute(p) for p in item.paths))
        elif isinstance(item, ArrayDataset) and item.path:
            item = dataclasses.replace(item, path=_absolute(item.path))
        elif isinstance(item, (str, os.PathLike)):
            item = _absolute(item)
        out.append(item)
    return out


def _absolute(path) -> str:
    path = os.fspath(path)
    return path if is_mrfs(path) else os.path.abspath(path)


def _local_paths(items: list) -> list[str]:
    """The local file-system paths among inputs and outputs (``mrfs://`` ones are shared by all)."""
    from mapred.io.datasets import ArrayDataset
    from mapred.io.inputs import RecordInput
    paths: list = []
    for item in items:
        if isinstance(item, RecordInput):
            paths += item.paths
        elif isinstance(item, ArrayDataset):
            paths.append(item.path)
        elif isinstance(item, str):
            paths.append(item)
    return [p for p in paths if isinstance(p, str) and p and not is_mrfs(p)]


def check_visible(inputs: list, output, workers: list[dict]) -> None:
    """Refuse local paths when a worker runs on another host: it would not find them.

    A ``ConfigError`` names the path and the hosts; the block store
    (``mrfs://``) is the file system every worker shares.
    """
    local = _local_paths([*inputs, output])
    elsewhere = sorted({str(w.get("host", "")) for w in workers} - {HOSTNAME})
    if local and elsewhere:
        raise ConfigError(f"local path {local[0]!r} is on {HOSTNAME}, but workers run on "
                          f"{', '.join(elsewhere)} and cannot see it; put the data in the block store "
                          f"(mapred fs put) and use mrfs://HOST:PORT/... paths")


def connect(address: str, timeout: float = 10.0, **kwargs) -> ClusterClient:
    """A handle on the master at ``address``; ``ClusterError`` if none answers within ``timeout``."""
    return ClusterClient(address, timeout, **kwargs)
