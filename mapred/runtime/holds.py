"""A running job's ``mrfs://`` inputs and output, held on their NameNodes so no cleanup rule takes them.

The client that waits on a job renews the hold every third of its ttl; a
client that dies stops renewing and the hold lapses, so nothing stays pinned
by a job nobody watches.  A hold is protection, not a lock: a NameNode that
cannot be reached (or predates holds) costs a debug line, never the job.
"""
from __future__ import annotations

import logging

from mapred.errors import MapredError

log = logging.getLogger(__name__)
TTL = 60.0


def _uris(inputs, output) -> list[str]:
    """The ``mrfs://`` paths among a job's inputs (paths, lists of them, datasets) and its output."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    items = [getattr(u, "path", u) for u in items] + [output]    # a dataset holds its directory
    return [u for u in items if isinstance(u, str) and u.startswith("mrfs://")]


class PathHolds:
    """``renew(now)`` while the job runs, ``release()`` when it ends."""

    def __init__(self, holder: str, inputs, output, ttl: float = TTL) -> None:
        from mapred.storage.fs import split_uri
        self.holder, self.ttl = holder, ttl
        self.by_nn: dict[str, list[str]] = {}
        for uri in _uris(inputs, output):
            try:
                netloc, path = split_uri(uri.split("*", 1)[0].rsplit("/", 1)[0] if "*" in uri else uri)
            except MapredError:
                continue
            self.by_nn.setdefault(netloc, []).append(path)
        self.next = float("-inf")

    def _each(self, call) -> None:
        from mapred.storage.fs import MrFS
        for netloc, paths in self.by_nn.items():
            try:
                call(MrFS.for_uri(f"mrfs://{netloc}/").client, paths)
            except MapredError as exc:
                log.debug("hold of %s on %s not renewed: %s", paths, netloc, exc)

    def renew(self, now: float) -> None:
        if self.by_nn and now >= self.next:
            self.next = now + self.ttl / 3
            self._each(lambda c, paths: c.hold(self.holder, paths, self.ttl))

    def release(self) -> None:
        if self.by_nn:
            self._each(lambda c, paths: c.release(self.holder))
