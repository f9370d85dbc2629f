"""Adaptive scaling for clusters mapred launches: watch the master, grow and retire workers.

The autoscaler is its own small process (``mapred autoscale``, started by
``mapred cluster up --min-workers A --max-workers B``).  Every ``poll``
seconds it lists the master's workers and waiting tasks, asks the pure
``core.scaling.Scaler`` what to do, launches workers through a ``Launcher``
and retires them through the master's drain (so a retired worker finishes
its attempts and serves its map outputs until nobody needs them).  Each
decision, with its reason, goes to ``DIR/autoscale.json``, which
``mapred cluster status`` shows.

A ``Launcher`` is how workers are obtained; ``LocalLauncher`` starts local
processes.  Another resource manager (YARN, Kubernetes, a batch queue) plugs
in by implementing the same three methods; nothing else changes, because a
worker only needs the master's address to join and is retired by the master.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Protocol

from mapred.core.scaling import Grow, Retire, Scaler, ScalingPolicy, WorkerView
from mapred.errors import MapredError

log = logging.getLogger("mapred.autoscale")
STATUS_FILE = "autoscale.json"
MAX_DECISIONS = 200


class Launcher(Protocol):
    """Where workers come from."""

    def launch(self, master: str) -> str:
        """Start one worker that joins ``master``; return a handle naming it (for logs)."""

    def reap(self) -> int:
        """Collect workers that exited (a retired worker exits by itself); return how many."""

    def stop_all(self) -> None:
        """Stop every worker this launcher started (the cluster is going down)."""


class LocalLauncher:
    """Worker processes on this machine, children of the autoscaler (so ``cluster down`` reaps them)."""

    def __init__(self, dir: str, slots: int = 1, env: dict | None = None, extra: tuple = ()) -> None:
        self.dir, self.slots, self.env, self.extra = dir, slots, env, list(extra)
        self.procs: dict[str, subprocess.Popen] = {}
        self._n = 0

    def launch(self, master: str) -> str:
        name = f"worker-auto-{self._n}"
        self._n += 1
        args = [sys.executable, "-m", "mapred", "worker", "--master", master, "--slots", str(self.slots),
                "--data-dir", os.path.join(self.dir, name), *self.extra]
        env = self.env
        keys = (env or os.environ).get("MAPRED_KEYS")
        if keys:   # a keyed cluster: each worker registers with its own worker key
            from mapred.security.keys import KeyDir
            KeyDir(keys).ensure(name, "worker")
            env = {**(env or os.environ), "MAPRED_PRINCIPAL": name}
        with open(os.path.join(self.dir, name + ".log"), "ab") as logf:
            self.procs[name] = subprocess.Popen(args, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)
        return f"{name} (pid {self.procs[name].pid})"

    def reap(self) -> int:
        gone = [n for n, p in self.procs.items() if p.poll() is not None]
        for n in gone:
            log.info("%s exited with %s", n, self.procs.pop(n).returncode)
        return len(gone)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs.clear()


class Autoscaler:
    """Polls the master; carries out the scaler's decisions; publishes them with their reasons."""

    def __init__(self, client, launcher: Launcher, policy: ScalingPolicy, status_path: str = "",
                 poll: float = 0.5) -> None:
        self.client, self.launcher, self.policy = client, launcher, policy
        self.scaler = Scaler(policy)
        self.status_path, self.poll = status_path, poll
        self.decisions: list[dict] = []
        self.seen: set[str] | None = None
        self.running = True

    def step(self, now: float) -> list:
        """One observation and its decisions, carried out."""
        info = self.client.cluster_info()
        views = [WorkerView(w["worker_id"], w.get("state", "ALIVE" if w["alive"] else "LOST"), w["slots"],
                            w["running"], w.get("needed_outputs", 0)) for w in info["workers"]]
        ids = {v.worker_id for v in views}
        joined = 0 if self.seen is None else len(ids - self.seen)
        self.seen = ids
        self.launcher.reap()
        decisions = self.scaler.decide(now, info.get("waiting_tasks", 0), views, joined)
        for d in decisions:
            self._carry_out(d)
            self._record(now, d, views)
        self._publish(views)
        return decisions

    def _carry_out(self, d) -> None:
        if isinstance(d, Grow):
            for _ in range(d.count):
                log.info("grow: launched %s (%s)", self.launcher.launch(self.client.address), d.reason)
        elif isinstance(d, Retire):
            try:
                self.client.drain(d.worker_id)
                log.info("retire: draining %s (%s)", d.worker_id, d.reason)
            except MapredError as exc:
                log.warning("retire of %s refused: %s", d.worker_id, exc)

    def _record(self, now: float, d, views) -> None:
        alive = sum(v.state == "ALIVE" for v in views)
        entry = {"time": now, "action": "grow" if isinstance(d, Grow) else "retire", "reason": d.reason,
                 "workers_before": alive}
        entry.update({"count": d.count} if isinstance(d, Grow) else {"worker": d.worker_id})
        self.decisions = (self.decisions + [entry])[-MAX_DECISIONS:]
        try:     # the master keeps them too, for the service's page and /metrics
            self.client.report_scaling(entry, {k: v for k, v in self.policy.__dict__.items()
                                               if isinstance(v, (int, float))})
        except MapredError as exc:
            log.warning("could not report the decision to the master: %s", exc)

    def _publish(self, views) -> None:
        if not self.status_path:
            return
        status = {"policy": self.policy.__dict__, "decisions": self.decisions,
                  "workers": {v.worker_id: v.state for v in views},
                  "launching": len(self.scaler.launching)}
        tmp = self.status_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(status, f, indent=1)
        os.replace(tmp, self.status_path)

    def serve(self) -> None:
        try:
            while self.running:
                try:
                    self.step(time.time())
                except MapredError as exc:
                    log.warning("master unreachable: %s", exc)
                time.sleep(self.poll)
        finally:
            self.launcher.stop_all()

    def stop(self, *_):
        self.running = False


def run(master: str, dir: str, policy: ScalingPolicy, poll: float = 0.5, extra: tuple = ()) -> None:
    """``mapred autoscale``: serve until SIGTERM."""
    from mapred.runtime.client import connect
    os.makedirs(dir, exist_ok=True)
    client = connect(master, timeout=10.0)
    launcher = LocalLauncher(dir, policy.slots_per_worker, extra=extra)
    scaler = Autoscaler(client, launcher, policy, os.path.join(dir, STATUS_FILE), poll)
    signal.signal(signal.SIGTERM, scaler.stop)
    signal.signal(signal.SIGINT, scaler.stop)
    scaler.serve()
