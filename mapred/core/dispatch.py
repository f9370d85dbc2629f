"""Handler tables built once, when a daemon or core is constructed.

A loop that finds its handler by name at the moment a message arrives turns a
renamed message into a silent "unknown" at run time.  ``handler_table`` pairs
each message class with its handler when the owner is built and refuses a
handler that names no message, so a rename fails at start-up, in every test.
Pure: no sockets, no wire import (the caller passes the message classes).
"""
from __future__ import annotations

from typing import Callable, Iterable


def handler_table(owner, prefix: str, messages: Iterable[type],
                  name_of: Callable[[type], str] = lambda cls: cls.__name__) -> dict[type, Callable]:
    """``{message class: bound handler}`` for every handler ``prefix + name_of(cls)`` ``owner`` has.

    Raises ``TypeError`` naming any method that starts with ``prefix`` but
    handles none of ``messages`` (a handler left behind by a rename).
    """
    table, bound = {}, set()
    for cls in messages:
        name = prefix + name_of(cls)
        handler = getattr(owner, name, None)
        if callable(handler):
            table[cls] = handler
            bound.add(name)
    orphans = sorted(n for n in dir(type(owner)) if n.startswith(prefix) and n not in bound)
    if orphans:
        raise TypeError(f"{type(owner).__name__} has handlers for no known message: {', '.join(orphans)}")
    return table
