"""Jobs and inputs for the service tests.  Shipped by value, so workers need not import this file."""
from __future__ import annotations

import random
import sys
import time

import cloudpickle

import mapred

cloudpickle.register_pickle_by_value(sys.modules[__name__])

# tokens a URL must carry escaped: the lookup has to find them all the same
ODD_WORDS = ["a/b", "50%", "?q=1", "naïve", "日本", "x#y", "semi;colon", "plus+sign", "..", "%2F"]


def write_words(store, path: str, lines: int, seed: int = 0, vocab: int = 1500) -> dict:
    """A text file of random words in the store; returns the true counts."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)] + ODD_WORDS
    counts: dict = {}
    out = []
    for _ in range(lines):
        line = [rng.choice(words) for _ in range(rng.randrange(1, 10))]
        for w in line:
            counts[w] = counts.get(w, 0) + 1
        out.append(" ".join(line))
    store.write_bytes(path, ("\n".join(out) + "\n").encode(), overwrite=True)
    return counts


def wordcount(reducers: int = 3, output_format: str = "text", map_sleep: float = 0.0):
    def mapper(_offset, line):
        if map_sleep:
            time.sleep(map_sleep)
        for w in line.split():
            yield w, 1

    def add(word, counts):
        yield word, sum(counts)

    return mapred.Job(mapper, combiner=add, reducer=add, num_reducers=reducers, name="wordcount",
                      output_format=output_format)


def lengths(reducers: int = 2):
    """Word length -> count, in msgpack record files: int keys."""
    def mapper(_offset, line):
        for w in line.split():
            yield len(w), 1

    def add(n, counts):
        yield n, sum(counts)

    return mapred.Job(mapper, combiner=add, reducer=add, num_reducers=reducers, name="lengths",
                      output_format="msgpack")


def failing():
    def mapper(_offset, line):
        if "w7" in line.split():
            raise ValueError(f"refusing the line {line[:30]!r}")
        yield line, 1

    job = mapred.Job(mapper, num_reducers=1, name="failing")
    job.max_attempts = 1
    return job


def gated(gate: str, deadline_s: float = 120.0):
    """A map-only job whose every task waits until the local file ``gate`` exists (or the deadline passes).

    It holds the cluster's slots for as long as a test needs (a service restart, say), with no timing
    guess: the test creates the gate when it is done.
    """
    def map_batch(lines):
        import os
        end = time.monotonic() + deadline_s
        while not os.path.exists(gate) and time.monotonic() < end:
            time.sleep(0.05)
        yield len(lines), None

    return mapred.Job(map_batch=map_batch, name="gated", input_format="text", output_format="text")
