"""Running a user combiner over grouped values, with the counters Hadoop keeps for it."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from mapred.errors import RecordError
from mapred.io.codec import approx_size


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


COMBINE_AT_LEAST = 4
"""Values a buffered key needs before the combiner is run on it in memory.

A combiner call costs a Python generator per key (about a microsecond and a
half); a key with two or three values saves only those values' few bytes of
shuffle.  Since a combiner may run any number of times on any of a key's
values — zero included — such keys ship as they are and the reducer (or a
later combine) sees them.
"""


def combine_in_place(combiner: Callable, groups: dict, counters: dict,
                     least: int = COMBINE_AT_LEAST) -> tuple[int, int]:
    """Replace the values of every key of ``groups`` with ``least`` or more of them by ``combiner``'s output.

    ``groups`` maps keys to value lists (the map's sort buffer) and is changed
    in place: a key the combiner yields nothing for is dropped.  The counters
    count every value as combine input and every value kept as output, so
    keys passed through count as combined into themselves.  Returns the
    values taken by the combiner and the estimated bytes of what it gave back
    (``approx_size`` and a list slot each), for the buffer's new size.
    """
    total = sum(map(len, groups.values()))
    took = gave = out_bytes = 0
    emptied = []
    for key, values in groups.items():
        if len(values) < least:
            continue
        out = []
        for pair in combiner(key, iter(values)):
            if type(pair) is not tuple or len(pair) != 2:
                pair = as_pair(pair, "combiner")
            if pair[0] != key:
                raise RecordError(f"combiner changed key {key!r:.60} to {pair[0]!r:.60}; a combiner must keep its key")
            out.append(pair[1])
        took += len(values)
        gave += len(out)
        out_bytes += sum(map(approx_size, out)) + 8 * len(out)
        if out:
            groups[key] = out          # an existing key: the dict's size, and so the iteration, is unchanged
        else:
            emptied.append(key)
    for key in emptied:
        del groups[key]
    counters["combine_input_records"] = counters.get("combine_input_records", 0) + total
    counters["combine_output_records"] = counters.get("combine_output_records", 0) + total - took + gave
    return took, out_bytes


def as_pair(pair: Any, who: str) -> tuple:
    """``pair`` as ``(key, value)``, or a ``RecordError`` saying what ``who`` yielded instead."""
    if type(pair) is tuple and len(pair) == 2:
        return pair
    if isinstance(pair, (tuple, list)) and len(pair) == 2:
        return pair[0], pair[1]
    raise RecordError(f"{who} yielded {pair!r:.80} ({type(pair).__name__}); expected a (key, value) pair")
