"""A whole cluster on this machine as real processes: NameNode, DataNodes, master, workers.

``mapred cluster up`` uses it to start a cluster and leave it running (its
pids go to a state file that ``mapred cluster down`` reads); tests and
benchmarks use it as a context manager that kills every process it started
— by pid, with their executor children — in ``finally``.  Readiness is
polled with deadlines (the master's ready file, then the master's own list of
live workers), never slept on.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil

from mapred.errors import ClusterError

STATE_FILE = "cluster.json"
# what a master started again by `mapred cluster restart-master` must run with, as `cluster up` gave it
MASTER_ENV = ("MAPRED_DEAD_TIMEOUT", "MAPRED_HEARTBEAT_INTERVAL", "MAPRED_SPECULATION", "MAPRED_KEYS",
              "MAPRED_PRINCIPAL")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until truthy; ``ClusterError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise ClusterError(f"timed out after {timeout:g}s waiting for {what}")


class Cluster:
    """A master and ``workers`` workers (and optionally a block store) under directory ``dir``."""

    def __init__(self, dir: str, workers: int = 3, slots: int = 1, datanodes: int = 0,
                 dead_timeout: float = 10.0, heartbeat: float = 1.0, speculation: bool = True,
                 short_circuit: bool = True, env: dict | None = None, start_timeout: float = 60.0,
                 detach: bool = False, block_size: int | None = None, service: bool = False,
                 service_port: int = 0, token_file: str = "", worker_via=None) -> None:
        self.dir = os.path.abspath(dir)
        os.makedirs(self.dir, exist_ok=True)
        self.n_workers, self.slots, self.n_datanodes = workers, slots, datanodes
        self.block_size, self.dead_timeout, self.heartbeat = block_size, dead_timeout, heartbeat
        self.short_circuit, self.start_timeout, self.detach = short_circuit, start_timeout, detach
        self.env = {**os.environ, "MAPRED_DEAD_TIMEOUT": str(dead_timeout),
                    "MAPRED_HEARTBEAT_INTERVAL": str(heartbeat),
                    "MAPRED_SPECULATION": "1" if speculation else "0", **(env or {})}
        self.master_proc: subprocess.Popen | None = None
        self.worker_procs: list[subprocess.Popen] = []
        self.master_addr = ""
        self.worker_master_addr = ""    # where workers connect, if not the master itself (a fault proxy)
        self.worker_via = worker_via    # master address -> the address workers are given
        self.storage = None
        self._client = None
        self._extra_pids: set[int] = set()
        self.extra_procs: list[subprocess.Popen] = []     # e.g. the autoscaler, recorded with the rest
        # the HTTP service (``mapred serve``) in front of master and store, when asked for
        self.want_service, self.service_port = service, service_port
        self.token_file = token_file or os.path.join(self.dir, "tokens.json")
        self.service_proc: subprocess.Popen | None = None
        self.service_url = ""

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Cluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Start the store and compute processes and wait until every node is ready."""
        if self.n_datanodes:
            from mapred.storage.minicluster import StorageCluster
            sizes = {"block_size": self.block_size} if self.block_size else {}   # else the harness's small blocks
            self.storage = StorageCluster(os.path.join(self.dir, "store"), datanodes=self.n_datanodes,
                                          replication=min(3, self.n_datanodes), env=self.env,
                                          dead_timeout=self.dead_timeout, heartbeat=self.heartbeat, **sizes)
            self.storage.start()
        self._start_master()
        if self.worker_via is not None:
            self.worker_master_addr = self.worker_via(self.master_addr)
        for _ in range(self.n_workers):
            self.start_worker(wait=False)
        self.wait_workers(self.n_workers)
        if self.want_service:
            self.start_service()

    def _env_for(self, principal: str, role: str) -> dict:
        """With a key directory (``MAPRED_KEYS`` in ``env``), each node runs as its own principal."""
        keydir = self.env.get("MAPRED_KEYS")
        if not keydir:
            return self.env
        from mapred.security.keys import KeyDir
        KeyDir(keydir).ensure(principal, role)
        return {**self.env, "MAPRED_PRINCIPAL": principal}

    def _spawn(self, args: list[str], log_name: str, env: dict | None = None,
               principal: str = "master", role: str = "admin") -> subprocess.Popen:
        with open(os.path.join(self.dir, log_name), "ab") as logf:
            return subprocess.Popen([sys.executable, "-m", "mapred", *args],
                                    env=env or self._env_for(principal, role),
                                    stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=self.detach)

    def _start_master(self) -> None:
        ready = os.path.join(self.dir, "master.addr")
        if os.path.exists(ready):
            os.remove(ready)         # a dead master's: wait for the new one's
        self.master_proc = self._spawn(_master_args(self.dir), "master.log")
        self.master_addr = _wait_master(self.master_proc, self.dir, self.start_timeout)

    def start_service(self) -> str:
        """Start ``mapred serve`` on loopback in front of this cluster; returns its URL."""
        ready = os.path.join(self.dir, "service.url")
        if os.path.exists(ready):
            os.remove(ready)
        args = ["serve", "--master", self.master_addr, "--port", str(self.service_port), "--any-port",
                "--token-file", self.token_file, "--ready-file", ready]
        if self.storage is not None:
            args += ["--namenode", self.storage.namenode_addr]
        self.service_proc = self._spawn(args, "service.log", principal="service", role="service")

        def up():
            if self.service_proc.poll() is not None:
                raise ClusterError(f"the service exited with {self.service_proc.returncode}; "
                                   f"see {self.dir}/service.log")
            return os.path.exists(ready) and open(ready).read().strip()

        self.service_url = wait_for(up, self.start_timeout, "the HTTP service to start")
        return self.service_url

    def start_worker(self, wait: bool = True, extra: list[str] | None = None, env: dict | None = None) -> int:
        """Start one more worker (``env`` replaces the cluster's environment); returns its index."""
        index = len(self.worker_procs)
        args = ["worker", "--master", self.worker_master_addr or self.master_addr, "--slots", str(self.slots),
                "--data-dir", os.path.join(self.dir, f"worker-{index}")]
        if not self.short_circuit:
            args.append("--no-short-circuit")
        self.worker_procs.append(self._spawn(args + list(extra or []), f"worker-{index}.log", env,
                                             principal=f"worker-{index}", role="worker"))
        if wait:
            self.wait_workers(len(self.live_worker_pids()))
        return index

    def wait_workers(self, n: int, timeout: float | None = None) -> list[dict]:
        """Block until the master sees ``n`` live workers."""
        def enough():
            for i, p in enumerate(self.worker_procs):
                if p.poll() is not None and i < n and p.returncode not in (None, -9, -15):
                    raise ClusterError(f"worker {i} exited with {p.returncode}; see {self.dir}/worker-{i}.log")
            live = self.client().workers()
            return live if len(live) >= n else None
        return wait_for(enough, timeout or self.start_timeout, f"{n} workers to register")

    def client(self):
        """A ``ClusterClient`` connected to this cluster's master."""
        if self._client is None:
            from mapred.runtime.client import connect
            self._client = connect(self.master_addr, timeout=10.0)
        return self._client

    # ------------------------------------------------------------------ faults
    def kill_master(self, sig: int = signal.SIGKILL) -> None:
        """Signal the master (kill -9 by default) and reap it."""
        if self.master_proc is not None and self.master_proc.poll() is None:
            self.master_proc.send_signal(sig)
            self.master_proc.wait(10)

    def restart_master(self) -> None:
        """Start the master again on its data dir: same port, its journal's jobs taken over."""
        old = self.master_addr
        if self._client is not None:
            self._client.close()
            self._client = None
        self._start_master()
        if self.master_addr != old:
            raise ClusterError(f"the restarted master is at {self.master_addr}, not {old}")

    def worker_pid(self, index: int) -> int:
        """The pid of the ``i``-th worker process."""
        return self.worker_procs[index].pid

    def live_worker_pids(self) -> list[int]:
        """Pids of the worker processes still running."""
        return [p.pid for p in self.worker_procs if p.poll() is None]

    def executor_pids(self, index: int) -> list[int]:
        """Pids of the executor processes under the ``i``-th worker."""
        try:
            return [c.pid for c in psutil.Process(self.worker_pid(index)).children(recursive=True)]
        except psutil.Error:
            return []

    def signal_worker(self, index: int, sig: int) -> None:
        """Send ``sig`` to a worker; remembers its executors so ``stop`` can still reap them."""
        self._extra_pids.update(self.executor_pids(index))
        os.kill(self.worker_pid(index), sig)

    def kill_worker(self, index: int) -> None:
        """Send ``sig`` to the ``i``-th worker (fault injection)."""
        self.signal_worker(index, signal.SIGKILL)
        self.worker_procs[index].wait(10)

    # ------------------------------------------------------------------ state file
    def state(self) -> dict:
        """The cluster's addresses and pids as a dict (what ``mapred cluster up`` records)."""
        pids = self.all_pids()
        master_env = self._env_for("master", "admin")
        return {"master": self.master_addr, "namenode": self.namenode_uri(), "dir": self.dir,
                "service": self.service_url, "token_file": self.token_file if self.service_url else "",
                "pids": [[pid, _create_time(pid)] for pid in pids],
                "master_pid": self.master_proc.pid if self.master_proc is not None else 0,
                "master_env": {k: master_env[k] for k in MASTER_ENV if k in master_env}}

    def namenode_uri(self) -> str:
        """The store's ``mrfs://`` root for job inputs and outputs."""
        return self.storage.namenode_uri if self.storage is not None else ""

    def write_state(self) -> str:
        """Write ``state()`` to ``path`` atomically."""
        path = os.path.join(self.dir, STATE_FILE)
        with open(path + ".tmp", "w") as f:
            json.dump(self.state(), f, indent=1)
        os.replace(path + ".tmp", path)
        return path

    def all_pids(self) -> list[int]:
        """Every process this cluster started."""
        pids = [p.pid for p in self.worker_procs + self.extra_procs]
        pids += [self.master_proc.pid] if self.master_proc else []
        pids += [self.service_proc.pid] if self.service_proc is not None else []
        if self.storage is not None:
            pids += [p.pid for p in [self.storage.namenode_proc, *self.storage.datanodes] if p is not None]
        return pids

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Kill every process started here, and their children, by pid; reap them."""
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing must not mask the test's own error
                pass
            self._client = None
        pids = [p for p in self.all_pids()]
        kill_pids(pids, self._extra_pids)
        for p in self.worker_procs + [q for q in (self.master_proc, self.service_proc) if q is not None]:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.storage is not None:
            self.storage.stop()


def _master_args(dir: str) -> list[str]:
    return ["master", "--ready-file", os.path.join(dir, "master.addr"), "--data-dir",
            os.path.join(dir, "master-data")]


def _wait_master(proc: subprocess.Popen, dir: str, timeout: float) -> str:
    """The address a just-started master writes to its ready file (``ClusterError`` if it exits)."""
    ready = os.path.join(dir, "master.addr")

    def up():
        if proc.poll() is not None:
            raise ClusterError(f"master exited with {proc.returncode}; see {dir}/master.log")
        return os.path.exists(ready) and open(ready).read().strip()

    return wait_for(up, timeout, "the master to start")



def _recorded(dir: str) -> tuple[str, dict, dict]:
    """The state file ``cluster up`` wrote in ``dir``: its path, its contents, and pid -> start time."""
    path = os.path.join(os.path.abspath(dir), STATE_FILE)
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError) as exc:
        raise ClusterError(f"no running cluster recorded in {dir}: {exc}") from None
    return path, state, {int(pid): float(t) for pid, t in state["pids"]}

def restart_master(dir: str, timeout: float = 60.0) -> str:
    """Start the master of the cluster recorded in ``dir`` again, after it died; returns its address.

    It runs on the same data dir (so it binds its old port and finishes the
    journal's jobs) with the settings ``cluster up`` gave it, detached, and
    replaces the dead master's pid in the state file, so ``cluster down``
    stops it.  A master still running is refused, not restarted.
    """
    path, state, created = _recorded(dir)
    old = int(state.get("master_pid") or 0)
    if old and _running(old, created.get(old, 0.0)):
        raise ClusterError(f"the master of {dir} (pid {old}) is still running; "
                           f"restart-master starts one that died")
    cdir = state.get("dir") or os.path.abspath(dir)
    ready = os.path.join(cdir, "master.addr")
    if os.path.exists(ready):
        os.remove(ready)
    with open(os.path.join(cdir, "master.log"), "ab") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "mapred", *_master_args(cdir)],
                                env={**os.environ, **state.get("master_env", {})}, stdout=logf,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        addr = _wait_master(proc, cdir, timeout)
        if addr != state["master"]:
            raise ClusterError(f"the restarted master is at {addr}, not {state['master']}")
    except BaseException:
        kill_pids([proc.pid])
        raise
    state["pids"] = [[p, t] for p, t in state["pids"] if p != old] + [[proc.pid, _create_time(proc.pid)]]
    state["master_pid"] = proc.pid
    with open(path + ".tmp", "w") as f:
        json.dump(state, f, indent=1)
    os.replace(path + ".tmp", path)
    return addr


def _running(pid: int, created: float) -> bool:
    """Whether ``pid`` is still the process started at ``created`` and not a zombie (killed, unreaped:
    a detached daemon's parent is gone, and init may take its time)."""
    try:
        p = psutil.Process(pid)
        return abs(p.create_time() - created) <= 1.0 and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _create_time(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def kill_pids(pids, extra=(), grace: float = 3.0, created: dict | None = None) -> int:
    """SIGTERM ``pids`` and their descendants, SIGKILL what is left after ``grace``; returns how many.

    ``created`` maps pid -> create time: a pid whose process started at
    another time was reused by the system and is left alone.
    """
    procs: dict[int, psutil.Process] = {}
    for pid in list(pids) + list(extra):
        try:
            p = psutil.Process(pid)
            if created and created.get(pid) and abs(p.create_time() - created[pid]) > 1.0:
                continue
            procs[pid] = p
            for c in p.children(recursive=True):
                procs.setdefault(c.pid, c)
        except psutil.Error:
            continue
    for p in procs.values():
        try:
            if p.status() == psutil.STATUS_STOPPED:
                p.send_signal(signal.SIGCONT)
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(procs.values()), timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)
    return len(procs)


def down(dir: str) -> int:
    """Stop the cluster whose state file is in ``dir``; returns how many processes were stopped."""
    path, state, created = _recorded(dir)
    n = kill_pids(list(created), created=created)
    os.remove(path)
    return n
