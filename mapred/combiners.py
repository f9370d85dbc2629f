"""Combiners marked as associative reductions, so the engine folds values in place.

A plain combiner gets every buffered value of a key as a list and yields new
pairs: the map side has to keep a list per key and call the combiner per key.
A ``Fold`` says more: its values combine two at a time with one associative
function (``operator.add`` for ``sum``), so the map side keeps *one* value per
key and folds each new value into it as it is collected — no list, no call per
key, no combiner run per spill.  It is still an ordinary combiner and reducer
(``fold(key, values)`` yields ``(key, folded)``), so every runner, the
sequential reference and the Spark and mrjob adapters run it unchanged::

    job = mapred.Job(mapper=mapper, combiner=mapred.combiners.sum, reducer=mapred.combiners.sum)
    job = mapred.Job(mapper=mapper, reduce_fn=operator.add)        # the same, Spark's reduceByKey form

The function must be associative (``f(f(a, b), c) == f(a, f(b, c))``) and
its result must be a value the engine can carry, as with any combiner: it may
run zero, one or many times.  Values are folded in the order they were
collected, so a function that is associative but not commutative (string
concatenation) gives the order of arrival within a map task; across tasks,
as with any combiner, the order is not defined.
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable, Iterable, Iterator

__all__ = ["Fold", "fold", "sum", "max", "min"]


class Fold:
    """A combiner (and reducer) that folds a key's values with an associative binary function."""

    associative = True     # the engine's marker: values of a key may be folded in place, in any grouping

    def __init__(self, fn: Callable[[Any, Any], Any], name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"Fold needs a callable of two values, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "fold")
        self.__name__ = self.name          # job names and error messages use it

    def __call__(self, key: Any, values: Iterable) -> Iterator[tuple[Any, Any]]:
        """The combiner/reducer form: yield ``(key, fn(...fn(fn(v0, v1), v2)..., vn))``."""
        yield key, functools.reduce(self.fn, values)

    def fold_values(self, values: Iterable) -> Any:
        """The values folded into one (at least one value)."""
        return functools.reduce(self.fn, values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fold) and other.fn == self.fn

    def __hash__(self) -> int:
        return hash((Fold, self.fn))

    def __repr__(self) -> str:
        return f"mapred.combiners.{self.name}" if _is_named(self) else f"Fold({self.fn!r})"

    def __reduce__(self):
        # named folds pickle by name: an executor gets the very object the engine recognises
        if _is_named(self):
            return (_named, (self.name,))
        return (Fold, (self.fn, self.name))


def fold(fn: Callable[[Any, Any], Any]) -> Fold:
    """``fn`` (associative, two values in, one out) as a combiner the engine folds in place."""
    return fn if isinstance(fn, Fold) else Fold(fn)


def _max(a, b):
    return b if b > a else a


def _min(a, b):
    return b if b < a else a


sum = Fold(operator.add, "sum")      # noqa: A001 - the names users write: mapred.combiners.sum
max = Fold(_max, "max")              # noqa: A001
min = Fold(_min, "min")              # noqa: A001
_NAMED = (sum, max, min)


def _is_named(f: Fold) -> bool:
    return any(f is named for named in _NAMED)


def _named(name: str) -> Fold:
    return {"sum": sum, "max": max, "min": min}[name]


def fold_of(combiner: Any) -> Callable[[Any, Any], Any] | None:
    """The binary function of a combiner marked associative, or ``None`` for a plain combiner."""
    if isinstance(combiner, Fold) or getattr(combiner, "associative", False) is True:
        fn = getattr(combiner, "fn", None)
        return fn if callable(fn) else None
    return None

