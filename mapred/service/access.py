"""What a principal may do with store paths, decided in one place.

The store has no owners, so the service applies HDFS's usual layout: each
user owns ``/user/<name>``; ``/tmp`` is shared scratch (WebHDFS clients such
as fsspec upload there before renaming into place).  A user reads anything
outside other users' homes and writes only in their own home and ``/tmp``;
an admin may do anything.
"""
from __future__ import annotations

from mapred.security.principals import Principal, Role

HOME_ROOT = "/user"
SHARED = ("/tmp",)


def home(principal: Principal) -> str:
    return f"{HOME_ROOT}/{principal.name}"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _owner_of(path: str) -> str | None:
    """The user whose home holds ``path``, or None outside ``/user/<name>``."""
    if not _under(path, HOME_ROOT) or path == HOME_ROOT:
        return None
    return path[len(HOME_ROOT) + 1:].split("/", 1)[0]


def may_read(principal: Principal, path: str) -> bool:
    if principal.role is Role.ADMIN:
        return True
    owner = _owner_of(path)
    return owner is None or owner == principal.name


def may_write(principal: Principal, path: str) -> bool:
    """Create, append, delete, rename from or to, change replication of ``path``."""
    if principal.role is Role.ADMIN:
        return True
    if any(_under(path, s) and path != s for s in SHARED):
        return True
    return _owner_of(path) == principal.name
