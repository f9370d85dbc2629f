"""A real block store on loopback for tests, benchmarks and ``mapred cluster up``.

``StorageCluster(tmpdir, datanodes=3)`` starts one NameNode and N DataNode
processes (``python -m mapred ...``) on 127.0.0.1 random ports and
returns once every DataNode is registered and live.  Readiness is polled with
a deadline, never slept on.  Every process it started is killed by pid on
exit, whatever happened.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mapred.errors import ClusterError, MapredError
from mapred.storage.client import Client


class _Fatal(Exception):
    """A condition that can no longer become true (the process died)."""


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value; ``ClusterError`` naming ``what`` if not."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except _Fatal as exc:
            raise ClusterError(str(exc)) from None
        except MapredError as exc:
            last_exc = exc
        time.sleep(interval)
    raise ClusterError(f"timed out after {timeout:g}s waiting for {what}"
                       + (f" (last error: {last_exc})" if last_exc else ""))


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass


class StorageCluster:
    """One NameNode and ``datanodes`` DataNodes as child processes under ``tmpdir``."""

    def __init__(self, tmpdir: str, datanodes: int = 3, block_size: int = 1024 * 1024,
                 replication: int = 3, dead_timeout: float = 2.0, heartbeat: float = 0.25,
                 scan_interval: float = 300.0, report_interval: float = 60.0,
                 safemode_threshold: float = 0.999, sync: bool = False, env: dict | None = None,
                 start_timeout: float = 30.0, checkpoint_every: int = 10000,
                 namenode_args: tuple = ()) -> None:
        self.dir = os.path.abspath(str(tmpdir))
        self.n_initial = datanodes
        self.block_size, self.replication, self.dead_timeout = block_size, replication, dead_timeout
        self.heartbeat, self.scan_interval, self.report_interval = heartbeat, scan_interval, report_interval
        self.safemode_threshold, self.sync = safemode_threshold, sync
        self.env = {**os.environ, **(env or {})}
        self.start_timeout = start_timeout
        self.checkpoint_every = checkpoint_every
        self.namenode_args = list(namenode_args)    # extra flags, e.g. --cleanup-rules FILE
        self.namenode_proc: subprocess.Popen | None = None
        self.datanodes: list[subprocess.Popen | None] = []
        self.datanode_dirs: list[str] = []
        self.port = 0
        self._client: Client | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> "StorageCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Start the NameNode and the DataNodes; on any failure stop what was started, then raise."""
        try:
            self._start_namenode()
            for _ in range(self.n_initial):
                self.start_datanode(wait=False)
            self.wait_live(self.n_initial)
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float = 2.0) -> None:
        """Stop every process this cluster started, by pid: SIGTERM, then SIGKILL after ``grace``."""
        if self._client is not None:
            self._client.close()
            self._client = None
        procs = [p for p in self.datanodes + [self.namenode_proc] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                _signal(proc, signal.SIGCONT)      # a SIGSTOPped node cannot act on SIGTERM
                _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

    # -- addresses -------------------------------------------------------------------------------

    @property
    def secret(self) -> str:
        """The cluster key its processes were started with (``MAPRED_SECRET`` in ``env``)."""
        return self.env.get("MAPRED_SECRET", "")

    @property
    def namenode_addr(self) -> str:
        """The NameNode's ``tcp://`` address."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def namenode_uri(self) -> str:
        """``mrfs://127.0.0.1:PORT`` — prefix of every path on this cluster."""
        return f"mrfs://127.0.0.1:{self.port}"

    def client(self) -> Client:
        """A shared Client (the harness closes it); make your own for concurrent use."""
        if self._client is None:
            self._client = Client(self.namenode_addr, secret=self.secret or None)
        return self._client

    def _env_for(self, principal: str) -> dict:
        """With a key directory (``MAPRED_KEYS`` in ``env``), each node runs as its own principal."""
        keydir = self.env.get("MAPRED_KEYS")
        if not keydir:
            return self.env
        from mapred.security.keys import KeyDir
        KeyDir(keydir).ensure(principal, "admin" if principal == "namenode" else "datanode")
        return {**self.env, "MAPRED_PRINCIPAL": principal}

    # -- processes -------------------------------------------------------------------------------

    def _spawn(self, args: list[str], log_name: str, principal: str = "namenode") -> subprocess.Popen:
        log = open(os.path.join(self.dir, log_name), "ab")
        try:
            return subprocess.Popen([sys.executable, "-m", "mapred", *args], env=self._env_for(principal),
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def _start_namenode(self) -> None:
        ready = os.path.join(self.dir, "namenode.ready")
        if os.path.exists(ready):
            os.remove(ready)
        args = ["namenode", "--data-dir", os.path.join(self.dir, "nn"), "--port", str(self.port),
                "--replication", str(self.replication), "--block-size", str(self.block_size),
                "--dead-timeout", str(self.dead_timeout), "--ready-file", ready,
                "--safemode-threshold", str(self.safemode_threshold),
                "--checkpoint-every", str(self.checkpoint_every), *self.namenode_args]
        os.makedirs(self.dir, exist_ok=True)
        self.namenode_proc = self._spawn(args, "namenode.log")
        addr = wait_for(lambda: self._read_ready(ready, self.namenode_proc), self.start_timeout,
                        "the NameNode to listen")
        self.port = int(addr.rsplit(":", 1)[1])

    def _read_ready(self, path: str, proc: subprocess.Popen) -> str:
        if proc.poll() is not None:
            raise _Fatal(f"process {proc.pid} exited with {proc.returncode}; see logs in {self.dir}")
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
        return ""

    def start_datanode(self, wait: bool = True) -> int:
        """Start one more DataNode; return its index."""
        index = len(self.datanodes)
        data_dir = os.path.join(self.dir, f"dn{index}")
        self.datanode_dirs.append(data_dir)
        self.datanodes.append(self._spawn_datanode(index), )
        if wait:
            self.wait_live(self.live_count_expected())
        return index

    def _spawn_datanode(self, index: int) -> subprocess.Popen:
        args = ["datanode", "--namenode", self.namenode_addr, "--data-dir", self.datanode_dirs[index],
                "--heartbeat", str(self.heartbeat), "--scan-interval", str(self.scan_interval),
                "--report-interval", str(self.report_interval)]
        if self.sync:
            args.append("--sync")
        return self._spawn(args, f"dn{index}.log", principal=f"dn-{index}")

    def restart_datanode(self, index: int, wait: bool = True) -> None:
        """Start DataNode ``index`` again on its old data directory (after a kill)."""
        self.datanodes[index] = self._spawn_datanode(index)
        if wait:
            self.wait_live(self.live_count_expected())

    def live_count_expected(self) -> int:
        """How many DataNodes should be alive now (those not stopped or killed)."""
        return sum(1 for p in self.datanodes if p is not None and p.poll() is None)

    def kill_datanode(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to DataNode ``index`` (SIGKILL: reaped and marked gone)."""
        proc = self.datanodes[index]
        if proc is None:
            return
        os.kill(proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            proc.wait(timeout=10)

    def datanode_pid(self, index: int) -> int:
        """The pid of the ``i``-th DataNode."""
        return self.datanodes[index].pid

    def kill_namenode(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the NameNode (fault injection)."""
        if self.namenode_proc is not None and self.namenode_proc.poll() is None:
            os.kill(self.namenode_proc.pid, sig)
            self.namenode_proc.wait(timeout=10)

    def restart_namenode(self, sig: int = signal.SIGKILL, wait_safemode_off: bool = True) -> None:
        """Kill the NameNode and start it again on the same port and journal."""
        self.kill_namenode(sig)
        if self._client is not None:
            self._client.close()
            self._client = None
        self._start_namenode()
        self.wait_live(self.live_count_expected())
        if wait_safemode_off:
            wait_for(lambda: not self.client().safemode("get"), self.start_timeout,
                     "the NameNode to leave safe mode")

    # -- readiness -------------------------------------------------------------------------------

    def live_datanodes(self) -> list[dict]:
        """The DataNode processes still running."""
        return [n for n in self.client().report() if n["state"] == "LIVE"]

    def wait_live(self, count: int, timeout: float | None = None) -> None:
        """Wait until ``count`` DataNodes are live at the NameNode."""
        wait_for(lambda: len(self.live_datanodes()) >= count, timeout or self.start_timeout,
                 f"{count} live DataNodes")

    def wait_healthy(self, path: str = "/", timeout: float = 30.0) -> dict:
        """Wait until every block under ``path`` has exactly its target number of live replicas."""
        def ok():
            r = self.client().fsck(path)
            return r if r["healthy"] and not r["under_replicated"] and not r["over_replicated"] else None
        return wait_for(ok, timeout, f"every block under {path} to be fully replicated")
