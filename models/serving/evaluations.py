"""Served evaluations: a run's state lives in the registry, so a restart of the service keeps it.

``POST .../versions/{v}/evaluate`` starts a run: its record (``NAME/runs/RUN.msgpack``:
model, version, dataset, who, state ``RUNNING``) is written before the answer,
and a thread evaluates (``models.evaluate``: a job on the cluster), keeps the
metrics with the version (one evaluation record per run, named by the run)
and rewrites the run's record as ``SUCCEEDED`` with them, or ``FAILED`` with
the reason.  Reading a run reads the registry, never this process's memory.

A service that starts finds the runs still ``RUNNING`` (their service died
with them) and takes them up again: the evaluation only reads, so it is run
once more from the start (``attempts`` counts the tries); and a run that had
already stored its evaluation record before the crash is finished from that
record, never evaluated twice into the version.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid

from ..registry import Registry

log = logging.getLogger("mapred.serving.evaluations")


def jsonable(value):
    """Metrics as plain JSON values (numpy arrays and scalars become lists and numbers)."""
    import numpy as np
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class EvaluationRuns:
    """Starts, resumes and reads served evaluation runs of one registry on one cluster."""

    def __init__(self, registry: Registry, master: str) -> None:
        self.registry, self.master = registry, master
        self.instance = uuid.uuid4().hex[:12]     # which service process runs a run now
        self._threads: dict[str, threading.Thread] = {}
        self.resumed = threading.Event()          # set once the runs a dead service left are taken up

    def start(self, name: str, version: int, dataset: str, user: str) -> dict:
        """Record a new run (``RUNNING``) and evaluate it in a thread; returns its record."""
        run = {"id": uuid.uuid4().hex[:12], "model": name, "version": int(version), "dataset": dataset,
               "state": "RUNNING", "started_at": time.time(), "by": user, "attempts": 1,
               "service": self.instance}
        self.registry.save_run(name, run)
        self._spawn(run)
        return run

    def get(self, name: str, run_id: str) -> dict:
        return self.registry.read_run(name, run_id)

    def resume(self) -> list[str]:
        """Take up every run left ``RUNNING`` by a service that is gone; the ids taken up."""
        taken = []
        for name in self.registry.names():
            for run in self.registry.runs(name):
                if run.get("state") != "RUNNING" or run.get("service") == self.instance:
                    continue
                run.update(attempts=int(run.get("attempts", 1)) + 1, service=self.instance,
                           resumed_at=time.time())
                self.registry.save_run(name, run)
                log.info("resuming evaluation run %s of %s/%s (attempt %d)", run["id"], name,
                         run["version"], run["attempts"])
                self._spawn(run)
                taken.append(run["id"])
        self.resumed.set()
        return taken

    def _spawn(self, run: dict) -> None:
        t = threading.Thread(target=self._run, args=(run,), daemon=True, name=f"evaluate-{run['id']}")
        self._threads[run["id"]] = t
        t.start()

    def wait(self, timeout: float | None = None) -> None:
        """Join the runs this process started (for tests and shutdown)."""
        for t in list(self._threads.values()):
            t.join(timeout)

    def _run(self, run: dict) -> None:
        name, version = run["model"], run["version"]
        try:
            done = self._stored(name, version, run["id"])
            if done is None:
                metrics = jsonable(self._evaluate(run))
                done = self.registry.add_evaluation(name, version, metrics, dataset=run["dataset"],
                                                    user=run["by"], run=run["id"])
            run.update(state="SUCCEEDED", metrics=done["metrics"], finished_at=time.time())
        except Exception as exc:  # noqa: BLE001 - a failed run says why; the service goes on
            log.warning("evaluation %s failed: %s", run["id"], exc)
            run.update(state="FAILED", error=f"{type(exc).__name__}: {exc}", finished_at=time.time())
        try:
            self.registry.save_run(name, run)
        except Exception:  # noqa: BLE001 - the run stays RUNNING and is taken up at the next start
            log.exception("could not store the end of evaluation run %s", run["id"])

    def _stored(self, name: str, version: int, run_id: str) -> dict | None:
        """The evaluation record a run already wrote (a crash between writing it and finishing)."""
        return next((e for e in self.registry.evaluations(name, version) if e.get("run") == run_id), None)

    def _evaluate(self, run: dict) -> dict:
        import mapred
        import models
        model = self.registry.load(f"models:/{run['model']}/{run['version']}")
        with mapred.connect(self.master, user=run["by"]) as cluster:
            return models.evaluate(model, mapred.load_dataset(run["dataset"]), cluster=cluster)
