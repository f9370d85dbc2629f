"""The trash, HDFS style: where a deleted path goes, and when the trash forgets it.  Pure.

``rm PATH`` by user NAME moves PATH to ``/user/NAME/.Trash/Current/PATH``
(``mv`` it back to restore).  Every ``checkpoint_interval`` the emptier
renames ``Current`` to a checkpoint named by the time (``yymmddHHMMSS``, UTC)
and deletes the checkpoints older than ``interval``: a deleted path is kept
at least ``interval`` and at most ``interval + checkpoint_interval``.
``expunge`` does the emptier's step at once; ``expunge(immediate=True)``
empties the whole trash.  Nothing here reads the clock: ``now`` comes in.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from mapred.errors import StorageError

DEFAULT_INTERVAL = 24 * 3600.0
SYSTEM_USER = "mapred"          # whose trash takes rule deletions outside any /user/NAME
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}\Z")
_IN_TRASH = re.compile(r"/user/[^/]+/\.Trash(/|\Z)")
_CHECKPOINT = re.compile(r"\d{12}(\.\d+)?\Z")


def check_user(user: str) -> str:
    if not isinstance(user, str) or not _USER.match(user):
        raise StorageError(f"user name {user!r} is not valid for a trash directory")
    return user


def root(user: str) -> str:
    return f"/user/{check_user(user)}/.Trash"


def current(user: str) -> str:
    return root(user) + "/Current"


def in_trash(path: str) -> bool:
    """``path`` lies in (or is) some user's trash."""
    return bool(_IN_TRASH.match(path))


def holds_trash(path: str) -> bool:
    """Deleting ``path`` would delete a trash directory (``/``, ``/user``, ``/user/NAME``)."""
    return path in ("/", "/user") or bool(re.fullmatch(r"/user/[^/]+", path)) or (
        in_trash(path) and path.count("/") == 3)


def owner_of(path: str, default: str = SYSTEM_USER) -> str:
    """The user whose trash a rule deletion of ``path`` goes to: NAME under ``/user/NAME``."""
    m = re.match(r"/user/([^/]+)/", path)
    return m.group(1) if m and _USER.match(m.group(1)) else default


def target(path: str, user: str, exists, now: float) -> str:
    """Where ``path`` goes in ``user``'s trash; a name already taken gets the time appended."""
    dst = current(user) + path
    if not exists(dst):
        return dst
    stamp = int(now * 1000)
    while exists(f"{dst}.{stamp}"):
        stamp += 1
    return f"{dst}.{stamp}"


def checkpoint_name(now: float) -> str:
    return datetime.fromtimestamp(now, timezone.utc).strftime("%y%m%d%H%M%S")


def checkpoint_time(name: str) -> float | None:
    """The time a checkpoint directory was made, from its name; None for anything else."""
    if not _CHECKPOINT.match(name):
        return None
    try:
        when = datetime.strptime(name[:12], "%y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return when.timestamp()


def trash_roots(ns) -> list[str]:
    """Every ``/user/NAME/.Trash`` present in the namespace ``ns``."""
    users = ns.lookup("/user")
    names = sorted(getattr(users, "children", {}) or {})
    return [f"/user/{n}/.Trash" for n in names
            if getattr(users.children[n], "children", None) is not None
            and ".Trash" in users.children[n].children]


def emptier_plan(ns, now: float, interval: float, immediate: bool = False) -> tuple[list, list]:
    """``(renames [(src, dst)], deletes [path])`` that checkpoint ``Current`` and drop old checkpoints."""
    renames, deletes = [], []
    for trash in trash_roots(ns):
        node = ns.lookup(trash)
        children = getattr(node, "children", {})
        if immediate:
            deletes.extend(f"{trash}/{name}" for name in sorted(children))
            continue
        for name in sorted(children):
            made = checkpoint_time(name)
            if made is not None and now - made >= interval:
                deletes.append(f"{trash}/{name}")
        if "Current" in children:
            name = checkpoint_name(now)
            suffix = 0
            while (name if not suffix else f"{name}.{suffix}") in children:
                suffix += 1
            renames.append((f"{trash}/Current", f"{trash}/{name if not suffix else f'{name}.{suffix}'}"))
    return renames, deletes
