"""Running a user combiner over grouped values, with the counters Hadoop keeps for it."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from mapred.errors import RecordError


def combine_groups(combiner: Callable, groups: Iterable[tuple[Any, Iterable]],
                   counters: dict) -> Iterator[tuple[Any, list]]:
    """Apply ``combiner(key, values)`` to each group; yield ``(key, [combined values])`` per input key.

    A combiner must not change the key (its output is re-sorted nowhere), so
    a pair with another key is an error that names both keys.
    """
    cin = cout = 0
    for key, values in groups:
        values = values if type(values) is list else list(values)
        cin += len(values)
        if len(values) == 1:            # nothing to combine: running it zero times is allowed
            cout += 1
            yield key, values
            continue
        out = []
        for pair in combiner(key, iter(values)):
            k2, v2 = as_pair(pair, "combiner")
            if k2 != key:
                raise RecordError(f"combiner changed key {key!r:.60} to {k2!r:.60}; a combiner must keep its key")
            out.append(v2)
        cout += len(out)
        if out:
            yield key, out
    counters["combine_input_records"] = counters.get("combine_input_records", 0) + cin
    counters["combine_output_records"] = counters.get("combine_output_records", 0) + cout


def as_pair(pair: Any, who: str) -> tuple:
    """``pair`` as ``(key, value)``, or a ``RecordError`` saying what ``who`` yielded instead."""
    if type(pair) is tuple and len(pair) == 2:
        return pair
    if isinstance(pair, (tuple, list)) and len(pair) == 2:
        return pair[0], pair[1]
    raise RecordError(f"{who} yielded {pair!r:.80} ({type(pair).__name__}); expected a (key, value) pair")
