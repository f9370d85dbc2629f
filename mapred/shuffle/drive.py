"""The per-record map loop, with the sort buffer's collect written into it.

A per-record mapper (``for w in line.split(): yield w, 1``) emits a pair
every few hundred nanoseconds of user code, so anything the engine does per
pair counts as much as the user's own work.  These loops do per pair only
what the semantics need — unpack the pair, find its key, append (or fold)
the value — and everything else per *distinct key* (the pair's type — a
tuple, or a list that ``as_pair`` accepts, never a 2-character string —,
the encodability check and the size estimate, in
``MapOutputBuffer.new_key``) or per record (the progress report, the
user-time sample, the size check):

* ``lists``: a plain combiner (or none). A repeated key costs a dict lookup
  and an append, not even a count: the pairs and the bytes of repeated
  values are counted from the lists' lengths between records (``_Meter``),
  repeated values sized at the mean size of the keys' first values.
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
CHECK_EVERY = 4096       # pairs between size checks of a heavy record's pairs (_Meter.metered)
HEAVY_RECORD = 1024      # mean pairs per record past which a list buffer checks its size per pair
FIRST_CHECK = 2          # the first record before which a list buffer is counted (the first may be heavy)
MAX_INTERVAL = 16384     # records between a list buffer's counts at most
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
    """The list loop (a plain combiner, or none): per pair a lookup and an append, nothing else.

    Pairs are not counted and the size is not checked per pair: both come
    from the buffer itself, between records (``_Meter``), and a new key's
    bytes are checked as it is added.  Whatever is rarer than a record —
    the user-time sample, the progress report, the size check — happens on
    the records ``check_at`` names.
    """
    groups = buf.groups              # the buffer's one dict: relief combines and spills it in place
    get, new_key, limit = groups.get, buf.new_key, buf.limit
    meter = _Meter(buf, mapper, report, stats)
    record = meter.record
    n_in = 0
    check_at = 1
    key = None
    try:
        for key, value in source:
            n_in += 1
            if n_in >= check_at:
                out, check_at = record(n_in, key, value)
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
                    over = new_key(k, v) > limit
                    groups[k] = [v]
                    if over:
                        check_at = meter.relieve(n_in)
                else:
                    values.append(v)
        meter.close(n_in)
    except BaseException:
        pos.offset = key
        raise
    finally:
        stats[0], stats[1] = n_in, meter.pairs


class _Meter:
    """How many pairs a list buffer holds and how big it is, counted between records, not per pair.

    The pairs collected since the last count are the growth of the buffer's
    list lengths (``sum(map(len, ...))``, one C pass over the keys); new keys
    are in ``buf.bytes`` already (``new_key``), repeated values are sized at
    the mean first value.  A count costs O(keys), so counts are spaced at
    least a quarter as many records apart as there are keys, and otherwise
    by the records the growth rate says fit in half the room left: the
    buffer passes its limit by at most a few records' values.  A job whose
    records each yield thousands of pairs (a document per record) would pass
    it by a whole record, so once a window averages over ``HEAVY_RECORD``
    pairs per record every later record's pairs are counted one by one
    (``metered``) and checked every ``CHECK_EVERY`` pairs.
    """

    __slots__ = ("base_keys", "base_values", "buf", "counted", "heavy", "last_bytes", "last_n", "mapper",
                 "n_in", "next_check", "next_sample", "pairs", "report", "stats")

    def __init__(self, buf, mapper, report, stats) -> None:
        self.buf, self.mapper, self.report, self.stats = buf, mapper, report, stats
        self.pairs = 0                 # pairs collected by this loop up to the last count
        self.heavy = False
        self.counted = 0               # pairs metered one by one since the last count (heavy records)
        self.last_n = self.n_in = 0
        self.next_sample, self.next_check = 1, FIRST_CHECK
        self._baseline()
        self.last_bytes = buf.bytes

    def _baseline(self) -> None:
        groups = self.buf.groups
        self.base_values = sum(map(len, groups.values()))
        self.base_keys = len(groups)

    def record(self, n_in: int, key, value) -> tuple:
        """Map record ``n_in`` (sampled when due) after a count if one is due; ``(output, next check_at)``."""
        self.n_in = n_in
        if n_in >= self.next_check:
            self.count(n_in)
        if n_in >= self.next_sample:
            self.next_sample = n_in + SAMPLE_MASK + 1
            self.report(n_in, self.pairs)
            out = _sampled(self.mapper, key, value, self.stats)
        else:
            out = self.mapper(key, value)
        if self.heavy:
            return (None if out is None else self.metered(out)), n_in + 1
        return out, min(self.next_sample, self.next_check)

    def count(self, n_in: int, relieve: bool = True) -> None:
        """Bring ``pairs`` and ``buf.bytes`` up to date; relieve the buffer if it is over its limit."""
        buf = self.buf
        groups = buf.groups
        if self.heavy:
            fresh = self.counted
            values = self.base_values + fresh
        else:
            values = sum(map(len, groups.values()))
            fresh = values - self.base_values
        self.counted = 0
        repeated = fresh - (len(groups) - self.base_keys)      # the rest were new keys, counted as added
        self.pairs += fresh
        if repeated > 0:
            buf.multi = True
            buf.bytes += repeated * (buf.first_bytes // max(1, buf.first_n) + 8)
        self.base_values, self.base_keys = values, len(groups)
        records = max(1, n_in - self.last_n)
        grown = max(1, buf.bytes - self.last_bytes)
        if not self.heavy and fresh > HEAVY_RECORD * records:
            self.heavy = True
        if relieve and buf.bytes > buf.limit:
            buf._relieve()
            self._baseline()
        self.last_n, self.last_bytes = n_in, buf.bytes
        # half the room left at the recent rate, never so often that the O(keys) count costs per record
        step = min(MAX_INTERVAL, max(0, buf.limit - buf.bytes) * records // (2 * grown))
        self.next_check = n_in + max(step, len(groups) // 4, 1)

    def relieve(self, n_in: int) -> int:
        """A new key took the buffer past its limit (record ``n_in``): count, relieve; the next check_at."""
        self.count(n_in)
        return n_in + 1 if self.heavy else min(self.next_sample, self.next_check)

    def metered(self, out) -> Iterable:
        """A heavy record's pairs, counted one by one, the buffer checked every ``CHECK_EVERY``."""
        n = 0
        for pair in out:
            yield pair
            n += 1
            if n == CHECK_EVERY:
                self.counted += n
                n = 0
                self.count(self.n_in)
        self.counted += n

    def close(self, n_in: int) -> None:
        """The loop is done: the last count, without relief (the buffer's finish decides what to do)."""
        self.count(n_in, relieve=False)


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


_LOOPS = {f.__code__ for f in (_drive_lists, _drive_sum, _drive_fold, _sampled, _Meter.record,
                                 _Meter.metered)}
