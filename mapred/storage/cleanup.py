"""Retention rules: given a snapshot of the namespace, the pins and ``now``, what to delete.  Pure.

This module knows no sockets, no clock and no NameNode: ``plan`` is a function
of its arguments, so a dry run (``plan`` alone) lists exactly what a real run
(``plan`` then applying each action in order) does, and the property tests
feed it random trees and ages.

A rule (S3 lifecycle and MLflow ``gc`` are the models) has an ``id``, a path
glob and any of:

- ``expire_after``: seconds since the last modification anywhere in the
  entry (a directory is as young as its youngest file);
- ``keep_last``: of the entries the glob matches in one directory (versions
  of a model, job outputs under a prefix) keep the N newest, delete the rest
  (together with ``expire_after``: the rest once they are also old enough);
- ``max_bytes``: while the matched entries hold more than this, delete the
  oldest first (never one that ``keep_last`` keeps);
- ``abort_incomplete_after``: abandon a file still open for writing whose
  writer has been silent this long;
- ``trash`` (default true): deletions go to the owner's trash, else at once.

A rule acts on the outermost paths its glob matches (``/tmp/**`` sees the
children of ``/tmp``, not also their insides).  A pin protects its path,
everything under it and every directory above it (deleting an ancestor would
delete it).  At most ``max_deletions_per_run`` actions come out of one run,
oldest first within a rule, rules in file order.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from mapred.errors import ConfigError
from mapred.storage import trash as trashmod

DEFAULT_MAX_DELETIONS = 1000
DEFAULT_INTERVAL = 600.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZES = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


# -- the inputs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    id: str
    path: str
    expire_after: float | None = None
    keep_last: int | None = None
    max_bytes: int | None = None
    abort_incomplete_after: float | None = None
    trash: bool = True

    def describe(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class RuleSet:
    rules: tuple = ()
    max_deletions_per_run: int = DEFAULT_MAX_DELETIONS
    interval: float = DEFAULT_INTERVAL       # seconds between the NameNode's own runs

    def describe(self) -> dict:
        return {"max_deletions_per_run": self.max_deletions_per_run, "interval": self.interval,
                "rules": [r.describe() for r in self.rules]}


class Entry(NamedTuple):
    """A file or directory: ``bytes`` and ``files`` of its whole subtree, ``mtime`` its newest.

    A named tuple, not a dataclass: a snapshot makes one per namespace node, and a
    tuple is several times cheaper to build (the walk runs on the NameNode's loop)."""

    path: str
    is_dir: bool
    bytes: int
    files: int
    mtime: float


@dataclass(frozen=True)
class OpenFile:
    path: str
    last_active: float


@dataclass(frozen=True)
class Pin:
    """A path no rule may touch, and why (``pinned``, ``alias champion``, ``job J input``...)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Snapshot:
    entries: tuple            # of Entry, every file and directory except /
    open_files: tuple = ()    # of OpenFile


# -- the outputs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeletePath:
    path: str
    rule: str
    reason: str
    bytes: int
    files: int
    trash: bool


@dataclass(frozen=True)
class AbortUpload:
    path: str
    rule: str
    reason: str


@dataclass(frozen=True)
class Honoured:
    """A path a rule would have deleted, kept because of ``pin``."""

    path: str
    rule: str
    pin: str


@dataclass
class Plan:
    actions: list = field(default_factory=list)
    honoured: list = field(default_factory=list)
    capped: int = 0                     # actions left out by max_deletions_per_run
    notes: list = field(default_factory=list)
    _seen: set = field(default_factory=set, repr=False)

    def describe(self) -> dict:
        return {"actions": [dict(a.__dict__, action=type(a).__name__) for a in self.actions],
                "honoured": [h.__dict__ for h in self.honoured], "capped": self.capped,
                "notes": list(self.notes),
                "freed_bytes": sum(getattr(a, "bytes", 0) for a in self.actions),
                "freed_files": sum(getattr(a, "files", 0) for a in self.actions),
                "by_rule": by_rule(self.actions, self.honoured)}


def by_rule(actions, honoured=()) -> dict:
    """Per rule: its deletions, aborts, bytes and files freed, pins honoured (a run's summary)."""
    out: dict[str, dict] = {}
    for a in actions:
        r = out.setdefault(a.rule, {"deletions": 0, "aborts": 0, "freed_bytes": 0, "freed_files": 0,
                                    "pins_honoured": 0})
        if isinstance(a, AbortUpload):
            r["aborts"] += 1
        else:
            r["deletions"] += 1
            r["freed_bytes"] += a.bytes
            r["freed_files"] += a.files
    for h in honoured:
        out.setdefault(h.rule, {"deletions": 0, "aborts": 0, "freed_bytes": 0, "freed_files": 0,
                                "pins_honoured": 0})["pins_honoured"] += 1
    return out


# -- globs -----------------------------------------------------------------------------------------

def glob_regex(pattern: str) -> re.Pattern:
    """``*`` and ``?`` within one path component, ``**`` across any number of them."""
    if not pattern.startswith("/"):
        raise ConfigError(f"rule path {pattern!r} must be absolute")
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("/**", i):
            out.append("(?:/[^/]+)*")
            i += 3
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


# -- the planner ---------------------------------------------------------------------------------

def plan(rules: RuleSet, snap: Snapshot, pins, now: float, use_trash: bool = True) -> Plan:
    """Every action of one run, in order; nothing pinned, nothing nested in an earlier deletion.

    ``use_trash`` False (a NameNode without trash) makes every deletion immediate.
    """
    pins = _PinIndex(pins)
    out = Plan()
    gone: set[str] = set()         # paths deleted earlier in this run
    for rule in rules.rules:
        for action in _rule_actions(rule, snap, pins, now, out, gone, use_trash):
            out.actions.append(action)
            if isinstance(action, DeletePath):
                gone.add(action.path)
    # the cap cuts the full plan: a capped run is the first N actions of the uncapped one
    out.capped = max(0, len(out.actions) - rules.max_deletions_per_run)
    del out.actions[rules.max_deletions_per_run:]
    return out


def _rule_actions(rule: Rule, snap: Snapshot, pins: list, now: float, out: Plan, gone: list,
                  use_trash: bool):
    regex = glob_regex(rule.path)
    matched = _outermost([e for e in snap.entries if regex.match(e.path)
                          and not _under_any(e.path, gone)])
    kept = _newest_per_dir(matched, rule.keep_last) if rule.keep_last is not None else set()
    doomed: list[tuple[Entry, str]] = []
    if rule.expire_after is not None or rule.keep_last is not None:
        for e in sorted(matched, key=_age_order):
            old = rule.expire_after is None or now - e.mtime >= rule.expire_after
            if old and e.path not in kept and _allowed(e, rule, pins, out):
                why = f"age {now - e.mtime:.0f}s"
                if rule.keep_last is not None:
                    why += f", beyond the {rule.keep_last} newest"
                doomed.append((e, why))
    if rule.max_bytes is not None:
        doomed += _over_budget(rule, matched, doomed, kept, pins, out)
    for e, why in doomed:
        to_trash = (use_trash and rule.trash and not trashmod.in_trash(e.path)
                    and not trashmod.holds_trash(e.path))
        yield DeletePath(e.path, rule.id, why, e.bytes, e.files, to_trash)
    if rule.abort_incomplete_after is not None:
        for f in sorted(snap.open_files, key=lambda f: (f.last_active, f.path)):
            silent = now - f.last_active
            if regex.match(f.path) and silent >= rule.abort_incomplete_after:
                if _allowed(Entry(f.path, False, 0, 0, f.last_active), rule, pins, out, open_ok=True):
                    yield AbortUpload(f.path, rule.id, f"writer silent {silent:.0f}s")


def _over_budget(rule, matched, doomed, kept, pins, out) -> list:
    """Oldest first, until the matched entries that are left hold at most ``max_bytes``."""
    chosen = {e.path for e, _ in doomed}
    total = sum(e.bytes for e in matched if e.path not in chosen)
    extra = []
    for e in sorted(matched, key=_age_order):
        if total <= rule.max_bytes:
            break
        if e.path in chosen or e.path in kept or not _allowed(e, rule, pins, out):
            continue
        extra.append((e, f"over max_bytes {rule.max_bytes} ({total} bytes matched)"))
        total -= e.bytes
    if total > rule.max_bytes:
        out.notes.append(f"rule {rule.id}: {total} bytes stay above max_bytes {rule.max_bytes} "
                         "(pinned or kept by keep_last)")
    return extra


class _PinIndex:
    """Pins by path, and by every directory above a pin: "is this path related to a pin" in O(depth)."""

    def __init__(self, pins) -> None:
        self.at: dict[str, list] = {}
        self.below: dict[str, Pin] = {}      # directory -> one pin somewhere under it
        for pin in pins:
            self.at.setdefault(pin.path, []).append(pin)
            for a in _ancestors(pin.path):
                self.below.setdefault(a, pin)

    def blocking(self, path: str, open_ok: bool = False):
        """The pin that keeps ``path`` (at, under or above it), or None."""
        for pin in self.at.get(path, ()):
            if not (open_ok and pin.reason == "open for writing"):
                return pin
        if path in self.below:
            return self.below[path]
        for a in _ancestors(path):
            if a in self.at:
                return self.at[a][0]
        return None


def _allowed(e: Entry, rule: Rule, pins: _PinIndex, out: Plan, open_ok: bool = False) -> bool:
    pin = pins.blocking(e.path, open_ok)
    if pin is None:
        return True
    seen = Honoured(e.path, rule.id, f"{pin.path} ({pin.reason})")
    if seen not in out._seen:
        out._seen.add(seen)
        out.honoured.append(seen)
    return False


def _under_any(path: str, roots: set) -> bool:
    return path in roots or any(a in roots for a in _ancestors(path))


def _outermost(entries: list) -> list:
    paths = {e.path for e in entries}
    return [e for e in entries if not any(a in paths for a in _ancestors(e.path))]


def _ancestors(path: str) -> list[str]:
    """Every directory above ``path`` (``/`` included: a pin anywhere keeps ``/`` from a rule)."""
    parts = path.strip("/").split("/")
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _newest_per_dir(entries: list, n: int) -> set:
    groups: dict[str, list] = {}
    for e in entries:
        groups.setdefault(e.path.rsplit("/", 1)[0] or "/", []).append(e)
    keep = set()
    for group in groups.values():
        group.sort(key=_age_order, reverse=True)
        keep.update(e.path for e in group[:n])
    return keep


def _age_order(e: Entry):
    return (e.mtime, e.path)


# -- snapshots of a Namespace ----------------------------------------------------------------------

def snapshot(ns, writing=None) -> Snapshot:
    """Every entry of ``ns`` (a ``Namespace``) with subtree sizes and newest mtimes, in one go."""
    walker = SnapshotWalker(ns, writing)
    while not walker.step(1 << 62):
        pass
    return walker.snapshot


class SnapshotWalker:
    """The walk behind ``snapshot``, in slices: ``step(budget)`` visits at most ``budget`` nodes.

    The NameNode walks a large namespace a slice per loop turn, answering
    requests in between, so the tree may change under the walk: a child gone
    since its directory was entered is skipped, a detached directory is still
    walked (its entries name paths that no longer exist).  Such a snapshot is
    only a list of candidates; whoever acts on it re-checks each path against
    the live namespace first (``storage.rulerun``).  Without changes between
    slices the result equals one uninterrupted walk.
    """

    def __init__(self, ns, writing=None) -> None:
        self.entries: list[Entry] = []
        self._open = tuple(OpenFile(p, uc.last_active) for p, uc in sorted((writing or {}).items()))
        # frames: [path, dir node, sorted child names, next index, bytes, files, newest mtime]
        self._stack = [["/", ns.root, sorted(ns.root.children), 0, 0, 0, ns.root.mtime]]
        self.visited = 0
        self.snapshot: Snapshot | None = None

    def step(self, budget: int) -> bool:
        """Visit up to ``budget`` nodes; True once the walk is complete (``self.snapshot`` set)."""
        stack = self._stack
        while stack and budget > 0:
            frame = stack[-1]
            path, node, names, i = frame[0], frame[1], frame[2], frame[3]
            if i < len(names):
                frame[3] = i + 1
                child = node.children.get(names[i])
                if child is None:            # removed since this directory was entered
                    continue
                budget -= 1
                self.visited += 1
                here = f"{'' if path == '/' else path}/{names[i]}"
                kids = getattr(child, "children", None)
                if kids is None:
                    self.entries.append(Entry(here, False, child.length, 1, child.mtime))
                    _add(frame, child.length, 1, child.mtime)
                else:
                    stack.append([here, child, sorted(kids), 0, 0, 0, child.mtime])
                continue
            stack.pop()
            if path != "/":
                self.entries.append(Entry(path, True, frame[4], frame[5], frame[6]))
                _add(stack[-1], frame[4], frame[5], frame[6])
        if not stack and self.snapshot is None:
            self.snapshot = Snapshot(tuple(self.entries), self._open)
        return self.snapshot is not None


def _add(frame: list, size: int, files: int, mtime: float) -> None:
    frame[4] += size
    frame[5] += files
    frame[6] = max(frame[6], mtime)


def subtree(node) -> tuple[int, int, float]:
    """``(bytes, files, newest mtime)`` of a live node, as a snapshot's ``Entry`` records them."""
    kids = getattr(node, "children", None)
    if kids is None:
        return node.length, 1, node.mtime
    size, files, mtime = 0, 0, node.mtime
    stack = list(kids.values())
    while stack:
        n = stack.pop()
        more = getattr(n, "children", None)
        mtime = max(mtime, n.mtime)
        if more is None:
            size, files = size + n.length, files + 1
        else:
            stack.extend(more.values())
    return size, files, mtime


# -- the rules file --------------------------------------------------------------------------------

def duration(value, what: str) -> float:
    """Seconds from a number or ``"90s"``, ``"10m"``, ``"24h"``, ``"7d"``, ``"2w"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(value))
    if not m or isinstance(value, bool):
        raise ConfigError(f"{what}: {value!r} is not a duration (seconds, or like 30m, 24h, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def size(value, what: str) -> int:
    """Bytes from an int or ``"500MB"``, ``"10GiB"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or isinstance(value, bool) or m.group(2).lower() not in _SIZES:
        raise ConfigError(f"{what}: {value!r} is not a size (bytes, or like 500MB, 10GiB)")
    return int(float(m.group(1)) * _SIZES[m.group(2).lower()])


_RULE_KEYS = {"id", "path", "expire_after", "keep_last", "max_bytes", "abort_incomplete_after", "trash"}


def parse_rules(data: dict) -> RuleSet:
    """A ``RuleSet`` from the rules document (parsed TOML or JSON); ``ConfigError`` names the fault."""
    if not isinstance(data, dict):
        raise ConfigError("cleanup rules must be a table/object with a 'rule' list")
    unknown = set(data) - {"rule", "rules", "max_deletions_per_run", "interval"}
    if unknown:
        raise ConfigError(f"cleanup rules: unknown key(s) {sorted(unknown)}")
    raw = data.get("rule", data.get("rules", []))
    if not isinstance(raw, list):
        raise ConfigError("cleanup rules: 'rule' must be a list of tables")
    rules, seen = [], set()
    for i, r in enumerate(raw):
        rule = _parse_rule(r, i)
        if rule.id in seen:
            raise ConfigError(f"cleanup rules: rule id {rule.id!r} appears twice")
        seen.add(rule.id)
        rules.append(rule)
    cap = data.get("max_deletions_per_run", DEFAULT_MAX_DELETIONS)
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
        raise ConfigError(f"cleanup rules: max_deletions_per_run {cap!r} must be a whole number >= 0")
    interval = duration(data.get("interval", DEFAULT_INTERVAL), "cleanup rules: interval")
    if interval <= 0:
        raise ConfigError("cleanup rules: interval must be positive")
    return RuleSet(tuple(rules), cap, interval)


def _parse_rule(r, i: int) -> Rule:
    if not isinstance(r, dict):
        raise ConfigError(f"cleanup rule #{i + 1} is not a table")
    unknown = set(r) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"cleanup rule #{i + 1}: unknown key(s) {sorted(unknown)}")
    rid, path = r.get("id"), r.get("path")
    if not isinstance(rid, str) or not rid:
        raise ConfigError(f"cleanup rule #{i + 1} needs a non-empty string 'id'")
    if not isinstance(path, str):
        raise ConfigError(f"cleanup rule {rid!r} needs a 'path' glob")
    glob_regex(path)
    what = f"cleanup rule {rid!r}"
    rule = Rule(
        id=rid, path=path,
        expire_after=duration(r["expire_after"], f"{what} expire_after") if "expire_after" in r else None,
        keep_last=_count(r.get("keep_last"), f"{what} keep_last"),
        max_bytes=size(r["max_bytes"], f"{what} max_bytes") if "max_bytes" in r else None,
        abort_incomplete_after=(duration(r["abort_incomplete_after"], f"{what} abort_incomplete_after")
                                if "abort_incomplete_after" in r else None),
        trash=_flag(r.get("trash", True), f"{what} trash"))
    if all(getattr(rule, k) is None for k in ("expire_after", "keep_last", "max_bytes",
                                               "abort_incomplete_after")):
        raise ConfigError(f"{what} names no condition (expire_after, keep_last, max_bytes, "
                          "abort_incomplete_after)")
    return rule


def _count(value, what: str):
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{what}: {value!r} must be a whole number >= 0")
    return value


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what}: {value!r} must be true or false")
    return value


def loads(text: str, fmt: str = "") -> RuleSet:
    """Parse rules text as JSON (when it starts with ``{`` or ``fmt == "json"``) or TOML."""
    fmt = fmt or ("json" if text.lstrip().startswith("{") else "toml")
    try:
        if fmt == "json":
            data = json.loads(text)
        else:
            import tomllib
            data = tomllib.loads(text)
    except ImportError:
        raise ConfigError("TOML rules need Python 3.11 or newer; write them as JSON") from None
    except ValueError as exc:   # json.JSONDecodeError and tomllib.TOMLDecodeError
        raise ConfigError(f"cleanup rules are not valid {fmt.upper()}: {exc}") from None
    return parse_rules(data)


def load_file(path: str) -> RuleSet:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read cleanup rules {path}: {exc.strerror}") from None
    fmt = "json" if path.endswith(".json") else "toml" if path.endswith(".toml") else ""
    try:
        return loads(text, fmt)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def dumps_toml(rules: RuleSet) -> str:
    """The rules as a TOML document that ``loads`` reads back to the same ``RuleSet``."""
    lines = [f"max_deletions_per_run = {rules.max_deletions_per_run}", f"interval = {rules.interval!r}"]
    for r in rules.rules:
        lines += ["", "[[rule]]"]
        for key, value in r.describe().items():
            lines.append(f"{key} = {json.dumps(value)}")   # JSON scalars are TOML scalars here
    return "\n".join(lines) + "\n"


def save_file(path: str, rules: RuleSet) -> None:
    """Write ``rules`` to ``path`` (JSON for ``.json``, else TOML) atomically."""
    import os
    text = (json.dumps(rules.describe(), indent=2) + "\n" if path.endswith(".json")
            else dumps_toml(rules))
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
