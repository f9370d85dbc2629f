"""Aliased versions pinned in the block store, so no cleanup rule of the NameNode deletes them.

The NameNode runs retention rules (``mapred cleanup``) but cannot read the
alias logs (they are file contents, on DataNodes); so the registry tells it:
every version an alias points at is pinned with the tag ``alias NAME@ALIAS``
(``Client.pin``), and a pin whose alias moved on is removed — the new target
is pinned before the old one is released, so a version is never unprotected
while an alias points at it.  ``Registry.set_alias`` calls ``sync`` after each
move; ``mapred cleanup pin-aliases ROOT`` runs it by hand.  A registry on a
local directory has no NameNode and nothing to do.
"""
from __future__ import annotations

import logging

from mapred.errors import MapredError

log = logging.getLogger("models.registry")
TAG = "alias "


def sync(registry, names=None) -> dict:
    """Pin every aliased version of ``names`` (default: all); unpin stale alias pins.  ``{"pinned", "unpinned"}``."""
    if not str(registry.root).startswith("mrfs://"):
        return {"pinned": [], "unpinned": []}
    from mapred.storage.fs import MrFS, split_uri
    client = MrFS.for_uri(registry.root).client
    names = list(names) if names is not None else registry.names()
    pinned, unpinned = [], []
    for name in names:
        want: dict[str, set] = {}
        for alias, st in registry.aliases(name).items():
            path = split_uri(registry._vdir(name, st.version))[1]
            want.setdefault(path, set()).add(f"{TAG}{name}@{alias}")
        have = client.pins(split_uri(registry._dir(name))[1])
        for path, tags in sorted(want.items()):
            for tag in sorted(tags - set(have.get(path, ()))):
                client.pin(path, tag)
                pinned.append((path, tag))
        for path, tags in sorted(have.items()):
            for tag in tags:
                if tag.startswith(f"{TAG}{name}@") and tag not in want.get(path, set()):
                    client.pin(path, tag, on=False)
                    unpinned.append((path, tag))
    return {"pinned": pinned, "unpinned": unpinned}


def sync_quietly(registry, name: str) -> None:
    """``sync`` for one model after an alias move; a store that cannot pin is logged, not raised."""
    try:
        sync(registry, [name])
    except MapredError as exc:
        log.warning("could not pin the aliased versions of %s in the store: %s", name, exc)
