"""When a cluster mapred launched should grow or shrink.  Pure: observations and ``now`` in, decisions out.

Modelled on Dask's ``Adaptive`` and Spark's dynamic allocation:

- **grow** while tasks wait and no slot is free, once the pressure has lasted
  ``up_delay`` seconds (short): enough workers for the waiting tasks, never
  above ``max_workers`` (workers launched but not yet registered count);
- **shrink** a worker idle for ``idle_timeout`` seconds (long: the delays
  are asymmetric, so a pause between two jobs does not cost a restart),
  never below ``min_workers``, never while tasks wait, and never one that
  holds map output a running job needs (the master reports it).  Retiring
  goes through the drain, so even a wrong guess loses no work.

Every decision carries its reason, for the status the autoscaler publishes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkerView:
    """A worker as the master lists it."""

    worker_id: str
    state: str              # ALIVE, DECOMMISSIONING, DECOMMISSIONED, LOST
    slots: int
    running: int
    needed_outputs: int


@dataclass(frozen=True)
class Grow:
    count: int
    reason: str


@dataclass(frozen=True)
class Retire:
    worker_id: str
    reason: str


@dataclass
class ScalingPolicy:
    min_workers: int = 1
    max_workers: int = 4
    slots_per_worker: int = 1
    up_delay: float = 2.0
    idle_timeout: float = 30.0
    launch_timeout: float = 60.0     # a launch not registered by then stops counting


@dataclass
class Scaler:
    policy: ScalingPolicy
    launching: list = field(default_factory=list)      # launch times not yet seen registered
    pressure_since: float | None = None
    idle_since: dict = field(default_factory=dict)     # worker_id -> since when idle

    def decide(self, now: float, waiting: int, workers: list[WorkerView], registered: int = 0) -> list:
        """Decisions for this observation; ``registered`` = launches that joined since the last call."""
        p = self.policy
        del self.launching[:registered]
        self.launching = [t for t in self.launching if now - t < p.launch_timeout]
        alive = [w for w in workers if w.state == "ALIVE"]
        free = sum(max(0, w.slots - w.running) for w in alive)
        total = len(alive) + len(self.launching)
        if waiting > 0 and free == 0 and total < p.max_workers:
            if self.pressure_since is None:
                self.pressure_since = now
        else:
            self.pressure_since = None
        if total < p.min_workers:
            return [self._grow(now, p.min_workers - total, f"{total} workers, below the minimum {p.min_workers}")]
        if self.pressure_since is not None and now - self.pressure_since >= p.up_delay:
            want = math.ceil(waiting / max(1, p.slots_per_worker))
            n = min(want, p.max_workers - total)
            waited = now - self.pressure_since
            self.pressure_since = None
            return [self._grow(now, n, f"{waiting} tasks waiting with no free slot for {waited:.1f}s")]
        return self._shrink(now, waiting, alive)

    def _grow(self, now: float, n: int, reason: str) -> Grow:
        self.launching += [now] * n
        return Grow(n, reason)

    def _shrink(self, now: float, waiting: int, alive: list[WorkerView]) -> list:
        p = self.policy
        idle = {w.worker_id for w in alive if w.running == 0 and w.needed_outputs == 0}
        self.idle_since = {w: self.idle_since.get(w, now) for w in idle}
        if waiting > 0:
            return []
        out, keep = [], len(alive)
        for w in sorted(idle, key=lambda w: (self.idle_since[w], w)):
            quiet = now - self.idle_since[w]
            if keep <= p.min_workers or quiet < p.idle_timeout:
                continue
            out.append(Retire(w, f"idle for {quiet:.1f}s, holds no map output a running job needs"))
            del self.idle_since[w]
            keep -= 1
        return out


ACTIONS = ("grow", "retire")


@dataclass
class DecisionLog:
    """The last ``keep`` decisions an autoscaler reported, and totals by action since the start.

    The master keeps one, so the service's page and ``/metrics`` show each
    decision with its reason wherever the autoscaler runs.
    """

    keep: int = 100
    decisions: list = field(default_factory=list)
    totals: dict = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    policy: dict = field(default_factory=dict)

    def record(self, entry: dict, policy: dict, now: float) -> dict:
        """Keep ``entry`` (action, reason, count or worker, workers_before), stamped ``now``."""
        if entry.get("action") not in ACTIONS:
            raise ValueError(f"scaling action {entry.get('action')!r} is not one of {', '.join(ACTIONS)}")
        entry = {**entry, "time": now, "seq": sum(self.totals.values()) + 1}
        self.totals[entry["action"]] += 1
        self.decisions = (self.decisions + [entry])[-self.keep:]
        if policy:
            self.policy = dict(policy)
        return entry

    def describe(self) -> dict:
        return {"decisions": list(self.decisions), "totals": dict(self.totals), "policy": dict(self.policy)}
