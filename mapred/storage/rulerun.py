"""One run of the retention rules, done in slices so the NameNode's loop keeps answering meanwhile.

A run over a large namespace would stall every client, heartbeat and block
report if it ran as one step of the NameNode's single-threaded loop.  So a
``RuleRun`` has three phases, each a series of short ``step`` calls the loop
makes between requests:

- **walk**: ``cleanup.SnapshotWalker`` copies the namespace into immutable
  entries, ``SLICE`` nodes per step (the pins are taken when it ends);
- **plan**: ``cleanup.plan`` on that snapshot -- pure, it shares nothing with
  the loop -- runs in a thread (``threaded``; inline for the core's tests);
- **apply** (not for a dry run): at most ``BATCH_ACTIONS`` actions, or one
  action and up to ``BATCH_FILES`` files, per step, through the Namesystem's
  ordinary journaled requests.

The tree may change between the snapshot and an action.  Every action is
re-checked against the live namespace first: it is skipped (and reported, with
the reason) if its path is now pinned, held or open for writing, or -- when
anyone but this run changed the namespace since the snapshot (its ``txid``
moved) -- if the path is gone or its size, file count or newest mtime differ
from the snapshot.  A skip is conservative: the next run sees the new state.
Without concurrent changes a real run does exactly what a dry run lists.
"""
from __future__ import annotations

import logging
import threading

from mapred.errors import StorageError
from mapred.storage import cleanup

log = logging.getLogger("mapred.namenode.cleanup")
SLICE = 2000             # namespace nodes walked per step
BATCH_ACTIONS = 64       # actions applied per step ...
BATCH_FILES = 4096       # ... or files removed, whichever comes first (one action at least)
KEEP_FINISHED = 32       # finished runs whose reports stay readable


class RuleRun:
    """A run's phases and its report; ``step(now)`` advances it, ``done`` says when it has ended."""

    def __init__(self, keeper, run_id: int, now: float, dry_run: bool = False,
                 threaded: bool = False) -> None:
        self.keeper, self.id, self.started, self.dry_run = keeper, run_id, now, dry_run
        self.threaded = threaded
        self.state = "walking"
        self.walker = cleanup.SnapshotWalker(keeper.core.ns, keeper.core.writing)
        self.plan: cleanup.Plan | None = None
        self.expected: dict[str, tuple] = {}     # action path -> what the snapshot saw
        self.error = ""
        self.report: dict | None = None
        self._next = 0                           # index of the next action to apply
        self._txid = keeper.core.ns.txid         # the txid when the walk began, then after our changes
        self._thread: threading.Thread | None = None
        self._done_bytes = 0

    @property
    def done(self) -> bool:
        return self.state in ("done", "failed")

    def describe(self) -> dict:
        out = {"run": self.id, "dry_run": self.dry_run, "state": self.state, "started": self.started}
        if self.report is not None:
            out["report"] = self.report
        if self.error:
            out["error"] = self.error
        return out

    # -- the phases --------------------------------------------------------------------------------

    def step(self, now: float) -> bool:
        """One short piece of work; True once the run has ended (report or error ready)."""
        if self.state == "walking":
            if self.walker.step(SLICE):
                self._begin_plan()
        elif self.state == "planning":
            if self._thread is None or not self._thread.is_alive():
                self._end_plan()
        elif self.state == "applying":
            self._apply_batch(now)
        return self.done

    def run_to_end(self, now: float) -> dict:
        """Every step at once (the core's callers and tests: nothing else runs meanwhile)."""
        while not self.step(now):
            pass
        if self.state == "failed":
            raise StorageError(self.error)
        return self.report

    def _begin_plan(self) -> None:
        k = self.keeper
        snap, pins = self.walker.snapshot, k.pins(self.started)
        rules = k.rules or cleanup.RuleSet()
        use_trash = k.core.cfg.trash_interval > 0
        self.state = "planning"
        if not self.threaded:
            self._plan(rules, snap, pins, use_trash)
            self._end_plan()
            return
        self._thread = threading.Thread(target=self._plan, args=(rules, snap, pins, use_trash),
                                        name=f"cleanup-plan-{self.id}", daemon=True)
        self._thread.start()

    def _plan(self, rules, snap, pins, use_trash) -> None:
        """Pure work on immutable inputs: safe off the loop's thread."""
        try:
            plan = cleanup.plan(rules, snap, pins, self.started, use_trash=use_trash)
            wanted = {a.path for a in plan.actions}
            expected = {e.path: (e.bytes, e.files, e.mtime) for e in snap.entries if e.path in wanted}
            expected.update({f.path: f.last_active for f in snap.open_files if f.path in wanted})
            self.plan, self.expected = plan, expected
        except Exception as exc:   # reported as the run's error, never lost in a thread
            log.exception("cleanup run %d: planning failed", self.id)
            self.error = f"planning failed: {type(exc).__name__}: {exc}"

    def _end_plan(self) -> None:
        if self.plan is None:
            self.state = "failed"
            self.error = self.error or "planning failed"
            return
        self.report = self.plan.describe()
        self.report.update(dry_run=self.dry_run, time=self.started, failed=[], skipped=[],
                           run=self.id, walked=self.walker.visited)
        if self.dry_run:
            self.keeper.metrics.dry_runs += 1
            self.state = "done"
            return
        try:
            self.keeper.core._writable()
        except StorageError as exc:
            self.state, self.error = "failed", str(exc)
            return
        self.state = "applying"

    def _apply_batch(self, now: float) -> None:
        actions = self.plan.actions
        pins = cleanup._PinIndex(self.keeper.pins(now))
        count = files = 0
        while self._next < len(actions) and count < BATCH_ACTIONS:
            action = actions[self._next]
            size = getattr(action, "files", 1)
            if count and files + size > BATCH_FILES:
                break
            self._next += 1
            count, files = count + 1, files + size
            self._one(action, pins, now)
        if self._next >= len(actions):
            self._finish()

    def _one(self, action, pins, now: float) -> None:
        why = self._stale(action, pins)
        if why:
            self.report["skipped"].append({"path": action.path, "rule": action.rule, "why": why})
            log.info("cleanup rule %s: skipped %s: %s", action.rule, action.path, why)
            return
        try:
            where = self.keeper._apply(action, now)
        except StorageError as exc:
            self.report["failed"].append({"path": action.path, "rule": action.rule, "error": str(exc)})
            self.keeper.metrics.failures += 1
            log.warning("cleanup rule %s: %s failed: %s", action.rule, action.path, exc)
            return
        finally:
            self._txid = self.keeper.core.ns.txid
        self.keeper._count(action)
        self._done_bytes += getattr(action, "bytes", 0)
        log.info("cleanup rule %s: %s %s (%s)%s", action.rule, type(action).__name__, action.path,
                 action.reason, f" -> {where}" if where else "")

    def _stale(self, action, pins) -> str:
        """Why ``action`` must not be carried out now, or ""."""
        opened = isinstance(action, cleanup.AbortUpload)
        pin = pins.blocking(action.path, open_ok=opened)
        if pin is not None:
            return f"now kept by {pin.path} ({pin.reason})"
        core = self.keeper.core
        if opened:
            uc = core.writing.get(action.path)
            if uc is None or uc.last_active != self.expected.get(action.path):
                return "its writer was heard from since the snapshot"
            return ""
        if core.ns.txid == self._txid:     # nobody else changed the namespace since the snapshot
            return ""
        node = core.ns.lookup(action.path)
        if node is None:
            return "gone since the snapshot"
        if cleanup.subtree(node) != self.expected.get(action.path):
            return "changed since the snapshot"
        return ""

    def _finish(self) -> None:
        k, planned = self.keeper, self.plan
        for h in planned.honoured:
            log.info("cleanup rule %s: kept %s, pinned by %s", h.rule, h.path, h.pin)
        m = k.metrics
        m.runs += 1
        m.last_run_time, m.last_run_freed_bytes = self.started, self._done_bytes
        m.pins_honoured += len(planned.honoured)
        m.capped += planned.capped
        m.skipped += len(self.report["skipped"])
        self.state = "done"


class RunQueue:
    """The NameNode's runs: one at a time, in request order; finished reports kept by id."""

    def __init__(self, keeper, threaded: bool = True) -> None:
        self.keeper, self.threaded = keeper, threaded
        self.waiting: list[RuleRun] = []
        self.finished: dict[int, RuleRun] = {}
        self._ids = 0

    @property
    def busy(self) -> bool:
        return bool(self.waiting)

    def start(self, now: float, dry_run: bool = False) -> RuleRun:
        self._ids += 1
        run = RuleRun(self.keeper, self._ids, now, dry_run, self.threaded)
        self.waiting.append(run)
        log.info("cleanup run %d queued%s", run.id, " (dry run)" if dry_run else "")
        return run

    def get(self, run_id: int) -> RuleRun | None:
        return next((r for r in self.waiting if r.id == run_id), None) or self.finished.get(run_id)

    def step(self, now: float) -> None:
        """Advance the run at the head of the queue by one step."""
        if not self.waiting:
            return
        run = self.waiting[0]
        if run.state == "walking" and run.walker.visited == 0:
            run.walker = cleanup.SnapshotWalker(self.keeper.core.ns, self.keeper.core.writing)
            run._txid = self.keeper.core.ns.txid
            run.started = max(run.started, now)    # ages are taken when its snapshot begins
        try:
            ended = run.step(now)
        except OSError:
            raise           # a journal failure: the NameNode stops
        except Exception as exc:   # a bug in one run must not stop the queue
            log.exception("cleanup run %d failed", run.id)
            run.state, run.error, ended = "failed", f"{type(exc).__name__}: {exc}", True
        if ended:
            self.waiting.pop(0)
            self.finished[run.id] = run
            while len(self.finished) > KEEP_FINISHED:
                del self.finished[min(self.finished)]
            log.info("cleanup run %d %s", run.id, run.state)
