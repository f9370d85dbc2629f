"""Who may read, write and remove what in the namespace: owners and permission bits.  Pure.

The model (see docs/security.md) is POSIX's owner/other split without groups
(principals have no groups): every file and directory records the principal
that made it (``owner``) and nine permission bits of which the owner and
"other" triples are used (the group triple is kept, and read as "other").
Defaults are HDFS's: files ``0644``, directories ``0755``; ``chmod 600`` (or
``700``) makes a path private.  Reading a file needs ``r`` on it, listing a
directory ``r`` on it, creating in a directory ``w`` on it, and every
ancestor needs ``x`` (traversal).  Removing or renaming a path needs ``w`` on
its parent *and* that the caller owns the path or the parent (the sticky
rule HDFS applies to ``/tmp``), for every path under it when recursive: a
user cannot delete or overwrite another's files in a directory they share.

Super-users pass every check: admins, the legacy shared-secret principal, an
unkeyed (loopback-trusted) peer, and worker nodes -- workers run every user's
task code against the store, so they read inputs and write outputs wherever
the job's owner may; a node that creates a path gives it to the owner of the
directory it is created in, so a job's output belongs to its owner.  A path
with no owner (from a journal older than ownership, or ``/``) is open to all.

The HTTP service (role ``service``) is a proxy, as Hadoop's proxy users are:
a request it marks ``as_user`` (the HTTP user it authenticated) is checked
with that user's rights -- a user's, never an admin's -- and what it creates
belongs to that user; a request it makes for itself (an HTTP admin's, or a
job it runs for a user after its own access check) passes, and what it
creates belongs to the directory's owner, like a worker's.
"""
from __future__ import annotations

from dataclasses import dataclass

from mapred.errors import PermissionDenied, StorageError
from mapred.security.policy import LEGACY
from mapred.security.principals import Principal, Role

FILE_MODE = 0o644
DIR_MODE = 0o755
READ, WRITE, EXEC = 4, 2, 1


@dataclass(frozen=True)
class Caller:
    """Whom a NameNode request acts for: a name, and whether every check passes."""

    name: str
    superuser: bool = False
    node: bool = False          # a worker: what it creates belongs to the directory's owner

    @classmethod
    def of(cls, peer: Principal | None, as_user: str = "") -> "Caller":
        """The caller a request from ``peer`` acts for (``as_user`` counts only from the service)."""
        if peer is None:
            return cls("local", superuser=True)
        if peer == LEGACY or peer.role is Role.ADMIN:
            return cls(peer.name, superuser=True)
        if peer.role is Role.WORKER:
            return cls(peer.name, superuser=True, node=True)
        if peer.role is Role.SERVICE:    # the HTTP service: a proxy (see the module doc)
            return cls(as_user) if as_user else cls(peer.name, superuser=True, node=True)
        return cls(peer.name)


def owner_for(caller: Caller, parent) -> str:
    """The owner of a path ``caller`` creates inside directory node ``parent`` ("" = open to all).

    A worker's creations belong to the directory's owner; an unkeyed peer has
    no identity to record, so what it makes stays open, as before owners.
    """
    if caller.node:
        return getattr(parent, "owner", "")
    return "" if caller.name == "local" else caller.name


def allows(node, caller: Caller, want: int) -> bool:
    """Whether ``node``'s bits give ``caller`` the ``want`` bits (READ/WRITE/EXEC, or-ed)."""
    owner, mode = getattr(node, "owner", ""), getattr(node, "mode", 0)
    if caller.superuser or not owner or not mode:
        return True
    bits = (mode >> 6) & 7 if owner == caller.name else mode & 7
    return bits & want == want


def _deny(caller: Caller, what: str, path: str) -> PermissionDenied:
    return PermissionDenied(f"permission denied: {caller.name} may not {what} {path}")


def check_traverse(ns, caller: Caller, path: str) -> None:
    """Every existing directory above ``path`` must let ``caller`` pass (``x``)."""
    if caller.superuser:
        return
    node, here = ns.root, ""
    for part in ([] if path == "/" else path[1:].split("/"))[:-1]:
        if not allows(node, caller, EXEC):
            raise _deny(caller, "enter", here or "/")
        node = getattr(node, "children", {}).get(part)
        here = f"{here}/{part}"
        if node is None:
            return
    if not allows(node, caller, EXEC):
        raise _deny(caller, "enter", here or "/")


def check(ns, caller: Caller, path: str, want: int, what: str) -> None:
    """``caller`` may reach ``path`` and has ``want`` on it (a missing path: only traversal)."""
    check_traverse(ns, caller, path)
    node = ns.lookup(path)
    if node is not None and not allows(node, caller, want):
        raise _deny(caller, what, path)


def check_create(ns, caller: Caller, path: str) -> None:
    """Make ``path``: ``w`` on the nearest existing directory above it, or on the file it replaces."""
    check_traverse(ns, caller, path)
    node = ns.lookup(path)
    if node is not None:
        if not allows(node, caller, WRITE):
            raise _deny(caller, "overwrite", path)
        return
    parent = path
    while parent != "/":
        parent = parent.rsplit("/", 1)[0] or "/"
        pnode = ns.lookup(parent)
        if pnode is not None:
            if not allows(pnode, caller, WRITE | EXEC):
                raise _deny(caller, "create in", parent)
            return


def check_remove(ns, caller: Caller, path: str, recursive: bool = True) -> None:
    """Remove (or move away) ``path``: ``w`` on its parent and the sticky rule, for all below it."""
    check_traverse(ns, caller, path)
    if caller.superuser:
        return
    parent_path = path.rsplit("/", 1)[0] or "/"
    stack = [(parent_path, ns.lookup(parent_path), path, ns.lookup(path))]
    while stack:
        ppath, parent, here, node = stack.pop()
        if node is None:
            continue
        if not allows(parent, caller, WRITE | EXEC):
            raise _deny(caller, "remove from", ppath)
        owners = {getattr(node, "owner", ""), getattr(parent, "owner", "")}
        if getattr(node, "owner", "") and caller.name not in owners:
            raise _deny(caller, "remove", f"{here} (owned by {node.owner})")
        for name, child in sorted(getattr(node, "children", {}).items()) if recursive else []:
            stack.append((here, node, f"{here.rstrip('/')}/{name}", child))


def check_owner(ns, caller: Caller, path: str, what: str) -> None:
    """Only the owner (or a super-user) may change a path's bits."""
    check_traverse(ns, caller, path)
    node = ns.get(path)
    if not caller.superuser and getattr(node, "owner", "") not in ("", caller.name):
        raise _deny(caller, what, path)


def check_mode(mode) -> int:
    """``mode`` if it is a permission value 0..0o777 (no setuid/sticky bits)."""
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o777:
        raise StorageError(f"permission {mode!r} must be an octal mode 000..777")
    return mode


def describe(mode: int) -> str:
    """``rwxr-xr-x`` for ``0o755``; ``---------`` style, or ``""`` for an unset mode."""
    if not mode:
        return ""
    return "".join(ch if mode >> (8 - i) & 1 else "-" for i, ch in enumerate("rwxrwxrwx"))
