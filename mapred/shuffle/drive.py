"""The per-record map loop, with the sort buffer's collect written into it.

A per-record mapper (``for w in line.split(): yield w, 1``) emits a pair
every few hundred nanoseconds of user code, so anything the engine does per
pair counts as much as the user's own work.  These loops do per pair only
what the semantics need — unpack the pair, find its key, append (or fold)
the value, count it — and everything else per *distinct key* (the pair's
type — a tuple, or a list that ``as_pair`` accepts, never a 2-character
string —, the encodability check and the size estimate, in
``MapOutputBuffer.new_key``) or per record (the progress report, the
user-time sample, the size check):

* ``lists``: a plain combiner (or none). A repeated key costs a dict lookup
  and an append; the bytes of repeated values are estimated from the mean
  size of the keys' first values, checked every ``CHECK_EVERY`` pairs.
* ``fold``: a combiner marked associative (``mapred.combiners``): the value
  is folded into the key's one slot, ``+`` written inline for ``sum``.

The time of the user's mapper is sampled: one record in 1,024 (the first
included) has its output gathered into a list under the clock, and the
sample is scaled to every record; the rest of the loop is the engine's.
"""
from __future__ import annotations

import operator
import time
from typing import Any, Callable, Iterable

from mapred.errors import RecordError
from mapred.shuffle.combine import as_pair

SAMPLE_MASK = 0x3FF      # records n with n & SAMPLE_MASK == 1 are sampled and reported (1, 1025, ...)
CHECK_EVERY = 4096       # appended values between size checks of a list buffer
_MISSING = object()


def drive(buf, source: Iterable, mapper: Callable, pos, report: Callable[[int, int], None]) -> tuple:
    """Run ``mapper`` over every ``(key, value)`` of ``source`` into ``buf``.

    Returns ``(records in, pairs out, estimated seconds in the mapper)``.
    ``report(n_in, n_out)`` is called on each sampled record (live progress).
    ``pos.offset`` names the record being mapped when anything raises.
    """
    if buf.mode != "records":
        buf._set_mode("records")
    stats = [0, 0, [], 0]           # records, pairs, the sampled calls' seconds
    try:
        if buf.fold is operator.add:
            _drive_sum(buf, source, mapper, pos, report, stats)
        elif buf.fold is not None:
            _drive_fold(buf, source, mapper, pos, report, stats)
        else:
            _drive_lists(buf, source, mapper, pos, report, stats)
    except (TypeError, ValueError) as exc:
        ours, tb = None, exc.__traceback__
        while tb is not None:                # the innermost frame of these loops on the way down
            if tb.tb_frame.f_code in _LOOPS:
                ours = tb
            tb = tb.tb_next
        if ours is not None and ours.tb_next is None:      # raised by the loop itself, not by user code
            _explain(ours.tb_frame.f_locals, exc)
        raise
    n_in, n_out, samples, _ = stats
    return n_in, n_out, scaled_sample(samples, n_in)


def _explain(names: dict, exc: Exception) -> None:
    """Raise the ``RecordError`` that says what the mapper gave where the loop expected pairs."""
    out = names.get("out")
    if out is not None and not hasattr(out, "__iter__"):
        raise RecordError(f"mapper returned {type(out).__name__}, not an iterable of (key, value) pairs") from None
    pair = names.get("pair", _MISSING)
    if pair is _MISSING:
        raise RecordError(f"map output could not be collected ({type(exc).__name__}: {exc})") from None
    as_pair(pair, "mapper")        # names what was yielded instead of a pair, if that was it
    try:
        hash(pair[0])
    except TypeError:
        raise RecordError(f"map output key {pair[0]!r:.60} of type {type(pair[0]).__name__} "
                          f"is not hashable") from None
    raise RecordError(f"map output {pair!r:.80} could not be collected ({type(exc).__name__}: {exc}); "
                      f"a folding combiner needs values its function takes") from None


def scaled_sample(samples: list, n: int) -> float:
    """Seconds for ``n`` calls, from the sampled calls' times.

    A sample that caught a preemption (a busy machine deschedules the
    process for milliseconds) would count 1,024 times over, so samples past
    ten times the median are left out of the mean, and so is the first
    call when there are others (it runs cold and would count for 1,024 too).
    """
    if not samples:
        return 0.0
    if len(samples) > 1:
        samples = samples[1:]        # the first call runs cold (first bytecode, first allocations)
    ordered = sorted(samples)
    cap = 10 * ordered[len(ordered) // 2]
    kept = [t for t in ordered if t <= cap] or ordered
    return sum(kept) / len(kept) * n


def _sampled(mapper, key, value, stats) -> Any:
    """Call the mapper under the clock, its output gathered into a list (user time only)."""
    started = time.perf_counter()
    out = mapper(key, value)
    if out is not None:
        out = list(out)
    stats[2].append(time.perf_counter() - started)
    return out


def _drive_lists(buf, source, mapper, pos, report, stats) -> None:
    groups = buf.groups
    get, new_key, limit = groups.get, buf.new_key, buf.limit
    n_in = n_out = 0
    first_bytes = first_n = 0        # the keys' first values: their mean sizes the repeated ones
    base = new_since = 0             # n_out at the last relief, keys first seen since
    check_at = CHECK_EVERY
    key = None
    try:
        for key, value in source:
            n_in += 1
            if n_in & SAMPLE_MASK == 1:
                report(n_in, n_out)
                out = _sampled(mapper, key, value, stats)
            else:
                out = mapper(key, value)
            if out is None:
                continue
            for pair in out:
                k, v = pair
                values = get(k)
                if values is None:
                    if type(pair) is not tuple:
                        as_pair(pair, "mapper")
                    first_bytes += new_key(k, v)
                    first_n += 1
                    new_since += 1
                    groups[k] = [v]
                else:
                    values.append(v)
                n_out += 1
                if n_out >= check_at:
                    # new keys are counted in buf.bytes already; repeated values at the mean first value
                    estimate = buf.bytes + (n_out - base - new_since) * (first_bytes // first_n + 8)
                    if estimate > limit:
                        buf.bytes = estimate
                        buf.multi = True
                        buf._relieve()
                        groups = buf.groups
                        get = groups.get
                        base, new_since = n_out, 0
                    check_at = n_out + CHECK_EVERY
        if n_out - base > new_since:
            buf.multi = True
            buf.bytes += (n_out - base - new_since) * (first_bytes // first_n + 8)
    except BaseException:
        pos.offset = key
        raise
    finally:
        stats[0], stats[1] = n_in, n_out


def _drive_sum(buf, source, mapper, pos, report, stats) -> None:
    """The fold loop with ``operator.add`` written inline (``mapred.combiners.sum``)."""
    groups = buf.groups
    get, new_key, missing = groups.get, buf.new_key, _MISSING
    n_in = n_out = 0                 # n_out: pairs since the counts were last handed to stats/buf
    recount_at = SAMPLE_MASK
    key = None
    try:
        for key, value in source:
            n_in += 1
            if n_in & SAMPLE_MASK == 1:
                report(n_in, stats[1] + n_out)
                out = _sampled(mapper, key, value, stats)
                if buf.growing and n_in >= recount_at:
                    stats[1] += n_out
                    buf.folded += n_out
                    n_out = 0
                    recount_at = n_in + _check_growing(buf)
                    groups = buf.groups
                    get = groups.get
            else:
                out = mapper(key, value)
            if out is None:
                continue
            for pair in out:
                k, v = pair
                old = get(k, missing)
                if old is missing:
                    if type(pair) is not tuple:
                        as_pair(pair, "mapper")
                    new_key(k, v)
                    groups[k] = v
                    if buf.bytes > buf.limit:
                        stats[1] += n_out + 1
                        buf.folded += n_out + 1
                        n_out = -1
                        buf._spill()
                        groups = buf.groups
                        get = groups.get
                else:
                    groups[k] = old + v
                n_out += 1
    except BaseException:
        pos.offset = key
        raise
    finally:
        buf.folded += n_out
        stats[0] = n_in
        stats[1] += n_out


def _drive_fold(buf, source, mapper, pos, report, stats) -> None:
    """The fold loop for any associative function (``max``, ``min``, ``Fold(fn)``)."""
    groups = buf.groups
    get, new_key, fold, missing = groups.get, buf.new_key, buf.fold, _MISSING
    n_in = n_out = 0
    recount_at = SAMPLE_MASK
    key = None
    try:
        for key, value in source:
            n_in += 1
            if n_in & SAMPLE_MASK == 1:
                report(n_in, stats[1] + n_out)
                out = _sampled(mapper, key, value, stats)
                if buf.growing and n_in >= recount_at:
                    stats[1] += n_out
                    buf.folded += n_out
                    n_out = 0
                    recount_at = n_in + _check_growing(buf)
                    groups = buf.groups
                    get = groups.get
            else:
                out = mapper(key, value)
            if out is None:
                continue
            for pair in out:
                k, v = pair
                old = get(k, missing)
                if old is missing:
                    if type(pair) is not tuple:
                        as_pair(pair, "mapper")
                    new_key(k, v)
                    groups[k] = v
                    if buf.bytes > buf.limit:
                        stats[1] += n_out + 1
                        buf.folded += n_out + 1
                        n_out = -1
                        buf._spill()
                        groups = buf.groups
                        get = groups.get
                else:
                    groups[k] = fold(old, v)
                n_out += 1
    except BaseException:
        pos.offset = key
        raise
    finally:
        buf.folded += n_out
        stats[0] = n_in
        stats[1] += n_out


def _check_growing(buf) -> int:
    """Folded values that are not numbers may grow (strings, lists): recount, spill when over.

    Returns how many records to map before the next recount: about as many
    as there are keys, so recounting costs O(1) per record however many keys.
    """
    buf.recount_folded()
    if buf.bytes > buf.limit:
        buf._spill()
    return max(SAMPLE_MASK, len(buf.groups))


_LOOPS = {f.__code__ for f in (_drive_lists, _drive_sum, _drive_fold, _sampled)}
