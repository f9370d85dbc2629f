"""A two-step pipeline: word count, then the top N words (``--param top=N``, default 10).

    mapred run examples/pipeline.py INPUT... -o OUT

Step 2 sends every (word, count) to one reducer under a single key and keeps
the N largest; ties are broken by the word, so the result is deterministic.
"""
import heapq
from collections import Counter

import mapred


def count_batch(lines):
    counts = Counter()
    for line in lines:
        counts.update(line.split())
    return counts.items()


def add(word, counts):
    yield word, sum(counts)


def to_single_key(word, count):
    yield "top", (count, word)


def top_n(_, pairs):
    n = int(mapred.context().params.get("top", 10))
    for count, word in heapq.nsmallest(n, pairs, key=lambda cw: (-cw[0], cw[1])):
        yield word, count


def top_combine(key, pairs):
    n = int(mapred.context().params.get("top", 10))
    for pair in heapq.nsmallest(n, pairs, key=lambda cw: (-cw[0], cw[1])):
        yield key, pair


count = mapred.Job(map_batch=count_batch, combiner=add, reducer=add, num_reducers=4, name="count")
top = mapred.Job(mapper=to_single_key, combiner=top_combine, reducer=top_n, num_reducers=1, name="top")
job = count.then(top)


if __name__ == "__main__":   # python examples/pipeline.py [INPUT... -o OUT]
    from mapred.cli.run import example_main
    example_main(__file__)
