"""The NameNode's housekeeping: the trash emptier, retention-rule runs, pins and holds.  Pure.

It drives the ``Namesystem`` through its public requests (``remove``,
``delete``, ``rename``, ``abandon``), so everything it does is journaled like
a client's request.  Time comes in as ``now``; the NameNode calls ``tick``
from its loop.

What keeps a path safe from the rules (``pins``):

- a namespace pin (``mapred cleanup pin PATH``; the model registry pins the
  versions its aliases point at) — journaled, it survives restarts;
- a hold: a running job's client holds its inputs and output, renewing the
  hold while it waits; a hold not renewed within its ttl lapses, so a dead
  client does not pin forever.  Holds live in memory: after a NameNode
  restart the first automatic run waits one interval, long after any live
  client has renewed;
- a file open for writing (and every directory above it).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mapred.errors import StorageError
from mapred.storage import cleanup, trash

log = logging.getLogger("mapred.namenode.cleanup")
MAX_HOLD_TTL = 3600.0


@dataclass
class RuleMetrics:
    bytes_freed: int = 0        # removed from where the rule looks (to the trash or gone)
    files_freed: int = 0
    bytes_to_trash: int = 0     # of those, the bytes still held by a trash
    deletions: int = 0
    aborts: int = 0


@dataclass
class Metrics:
    runs: int = 0
    dry_runs: int = 0
    last_run_time: float = 0.0
    last_run_freed_bytes: int = 0
    pins_honoured: int = 0
    capped: int = 0
    failures: int = 0
    skipped: int = 0            # actions dropped because their path changed since the snapshot
    trash_checkpoints: int = 0
    trash_expunged: int = 0
    by_rule: dict = field(default_factory=dict)

    def describe(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "by_rule"}
        out["by_rule"] = {r: dict(m.__dict__) for r, m in sorted(self.by_rule.items())}
        return out


class Housekeeper:
    """Owns the rules, the holds and the metrics; acts on ``core`` (a ``Namesystem``)."""

    def __init__(self, core, rules: cleanup.RuleSet | None = None, now: float = 0.0) -> None:
        self.core = core
        self.rules = rules
        self.holds: dict[str, tuple[tuple, float]] = {}     # holder -> (paths, expiry)
        self.metrics = Metrics()
        interval = core.cfg.trash_interval
        self.empty_every = core.cfg.trash_checkpoint_interval or min(interval, 3600.0)
        self.next_empty = now + self.empty_every
        self.next_run = now + rules.interval if rules and rules.rules else None

    # -- rules -----------------------------------------------------------------------------------

    def set_rules(self, rules: cleanup.RuleSet, now: float) -> None:
        self.rules = rules
        self.next_run = now + rules.interval if rules.rules else None

    def describe_rules(self) -> dict:
        return (self.rules or cleanup.RuleSet()).describe()

    # -- pins and holds ----------------------------------------------------------------------------

    def hold(self, holder: str, paths: list, ttl: float, now: float) -> None:
        """Hold ``paths`` for ``holder`` until ``now + ttl`` (replacing its earlier hold)."""
        if not holder or len(holder) > 255:
            raise StorageError(f"hold holder {holder!r:.80} must be 1..255 characters")
        if not paths:
            self.holds.pop(holder, None)
            return
        if not 0 < ttl <= MAX_HOLD_TTL:
            raise StorageError(f"hold ttl {ttl} must be in (0, {MAX_HOLD_TTL:g}] seconds")
        from mapred.storage.namespace import normalize
        self.holds[holder] = (tuple(normalize(p) for p in paths), now + ttl)

    def pins(self, now: float) -> list[cleanup.Pin]:
        out = [cleanup.Pin(p, "pinned: " + ", ".join(sorted(tags)))
               for p, tags in sorted(self.core.ns.pins.items())]
        for holder, (paths, expiry) in sorted(self.holds.items()):
            if expiry >= now:
                out.extend(cleanup.Pin(p, f"in use by {holder}") for p in paths)
        out.extend(cleanup.Pin(p, "open for writing") for p in sorted(self.core.writing))
        return out

    def _expire_holds(self, now: float) -> None:
        for holder in [h for h, (_, expiry) in self.holds.items() if expiry < now]:
            del self.holds[holder]

    # -- runs ------------------------------------------------------------------------------------

    def plan(self, now: float) -> cleanup.Plan:
        rules = self.rules or cleanup.RuleSet()
        return cleanup.plan(rules, cleanup.snapshot(self.core.ns, self.core.writing),
                            self.pins(now), now, use_trash=self.core.cfg.trash_interval > 0)

    def run(self, now: float, dry_run: bool = False) -> dict:
        """One run of the rules, all at once; the report lists every action (done, or that would be).

        The NameNode does the same run in slices between requests (``rulerun.RunQueue``).
        """
        from mapred.storage.rulerun import RuleRun
        if not dry_run:
            self.core._writable()
        return RuleRun(self, 0, now, dry_run).run_to_end(now)

    def _apply(self, action, now: float) -> str:
        if isinstance(action, cleanup.AbortUpload):
            if action.path not in self.core.writing:
                raise StorageError(f"{action.path} is no longer open for writing")
            self.core.abandon(action.path)
            return ""
        return self.core.remove(action.path, True, trash.owner_of(action.path), action.trash, now)

    def _count(self, action) -> None:
        m = self.metrics.by_rule.setdefault(action.rule, RuleMetrics())
        if isinstance(action, cleanup.AbortUpload):
            m.aborts += 1
            return
        m.deletions += 1
        m.bytes_freed += action.bytes
        m.files_freed += action.files
        if action.trash:     # a trashed path frees its disk when the trash forgets it
            m.bytes_to_trash += action.bytes

    # -- the trash ---------------------------------------------------------------------------------

    def empty_trash(self, now: float, immediate: bool = False, user: str = "") -> dict:
        """Checkpoint every ``Current`` and drop checkpoints older than the trash interval."""
        self.core._writable()
        renames, deletes = trash.emptier_plan(self.core.ns, now, self.core.cfg.trash_interval,
                                              immediate)
        if user:
            mine = trash.root(user) + "/"
            renames = [(s, d) for s, d in renames if s.startswith(mine)]
            deletes = [p for p in deletes if p.startswith(mine)]
        freed = 0
        for path in deletes:
            freed += sum(n.length for _, n in self.core.ns.walk_files(path))
            self.core.delete(path, True)
            log.info("trash: expunged %s", path)
        for src, dst in renames:
            self.core.rename(src, dst, now)
        self.metrics.trash_checkpoints += len(renames)
        self.metrics.trash_expunged += len(deletes)
        return {"checkpoints": [d for _, d in renames], "expunged": deletes, "freed_bytes": freed}

    # -- the clock ---------------------------------------------------------------------------------

    def tick(self, now: float, start_run=None) -> list[dict]:
        """Due work: the trash emptier and the rules' run; nothing while in safe mode.

        ``start_run(now)``, when given, starts the due run instead of running it here
        (the NameNode queues it, to be done in slices); its result is listed.
        """
        self._expire_holds(now)
        if self.core.safemode:
            return []
        done = []
        if self.core.cfg.trash_interval > 0 and now >= self.next_empty:
            self.next_empty = now + self.empty_every
            done.append(self.empty_trash(now))
        if self.next_run is not None and now >= self.next_run:
            self.next_run = now + self.rules.interval
            done.append(start_run(now) if start_run else self.run(now))
        return done

    def status(self, now: float) -> dict:
        return {"metrics": self.metrics.describe(), "rules": len(self.rules.rules) if self.rules else 0,
                "rule_ids": [r.id for r in self.rules.rules] if self.rules else [],
                "next_run": self.next_run, "holds": len(self.holds),
                "pins": len(self.core.ns.pins), "trash_interval": self.core.cfg.trash_interval}
