"""Refusals: every request a daemon turns away is logged with who asked and why, and counted.

One ``Refusals`` per daemon.  ``refuse(who, reason, detail)`` writes one
warning line naming the principal (or peer) and the reason, and bumps the
counter for ``reason``.  ``counts()`` is the plain ``{reason: n}`` map that the
daemons put in their status replies, where the HTTP service's ``/metrics``
reads it.  Reasons are short fixed words (``no_token``, ``bad_token``,
``wrong_role`` ...), so the counter set stays small whatever an attacker sends.
"""
from __future__ import annotations

import collections
import logging
import threading


class Refusals:
    """A thread-safe refusal counter and logger for one daemon (``who_am_i`` names it in logs)."""

    def __init__(self, who_am_i: str, logger: logging.Logger | None = None) -> None:
        self.who_am_i = who_am_i
        self.log = logger or logging.getLogger("mapred.security")
        self._counts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def refuse(self, who: object, reason: str, detail: str = "") -> str:
        """Log and count one refusal; return a one-line message for the reply."""
        with self._lock:
            self._counts[reason] += 1
        line = f"{self.who_am_i} refused {who}: {reason}" + (f" ({detail})" if detail else "")
        self.log.warning(line)
        return line

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
