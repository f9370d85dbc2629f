"""What a running task can see of itself: params, split, ids, counters, broadcasts.

The executor sets the current ``TaskContext`` before it calls user code and
clears it after, so ``mapred.counter(...)`` and ``mapred.context()`` work from
any function a task runs, without threading arguments through user code.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any

from mapred.io import codec
from mapred.errors import MapredError


@dataclass
class TaskContext:
    """The running attempt's identity and its user-visible state."""

    job_id: str
    task_id: str
    attempt: str
    params: dict
    split: Any = None
    partition: int | None = None
    counters: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)   # per-task scratch space (e.g. an in-mapper Counter)

    def counter(self, group: str, name: str, n: int = 1) -> None:
        """Add ``n`` to the user counter ``group.name`` of this task."""
        names = self.counters.setdefault(str(group), {})
        names[str(name)] = names.get(str(name), 0) + int(n)


_current: TaskContext | None = None


def set_current(ctx: TaskContext | None) -> None:
    """Install (or clear, with ``None``) the context ``context()`` returns in this process."""
    global _current
    _current = ctx


def context() -> TaskContext:
    """The context of the task running in this process; an error outside a task."""
    if _current is None:
        raise MapredError("mapred.context() was called outside a running task")
    return _current


def counter(group: str, name: str, n: int = 1) -> None:
    """Add ``n`` to the user counter ``group/name``; summed over the attempts that commit."""
    context().counter(group, name, n)


_broadcast_cache: dict[str, Any] = {}
_ids = itertools.count()


class Broadcast:
    """A read-only value sent once with each job that uses it and decoded once per executor.

    The value is encoded with mapred's codec (numpy arrays as raw bytes, never
    pickle) when the broadcast is made; the encoded bytes travel with the job
    code, and ``.value`` decodes them the first time a process asks.
    """

    def __init__(self, value: Any) -> None:
        self.id = f"bc-{os.getpid()}-{next(_ids)}-{id(self):x}"
        try:
            self._payload = codec.packb(value)
        except TypeError as exc:
            raise MapredError(f"broadcast value cannot be encoded: {exc}") from None
        self._value = value
        self._has_value = True

    @property
    def value(self) -> Any:
        """The broadcast value, loaded once per executor process and kept."""
        if self._has_value:
            return self._value
        if self.id not in _broadcast_cache:
            _broadcast_cache[self.id] = codec.unpackb(self._payload)
        return _broadcast_cache[self.id]

    @property
    def nbytes(self) -> int:
        """The size of the broadcast's encoded bytes."""
        return len(self._payload)

    def __getstate__(self) -> dict:
        return {"id": self.id, "_payload": self._payload}

    def __setstate__(self, state: dict) -> None:
        self.id = state["id"]
        self._payload = state["_payload"]
        self._value = None
        self._has_value = False

    def __repr__(self) -> str:
        return f"Broadcast({self.id}, {self.nbytes} bytes)"


def broadcast(value: Any) -> Broadcast:
    """Make ``value`` readable in every task of the jobs that reference it (``bc.value``)."""
    return Broadcast(value)
