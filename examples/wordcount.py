"""Word count: tokens are exactly ``str.split()`` of each line; output lines ``word<TAB>count``.

    mapred run examples/wordcount.py INPUT... -o OUT

``map_batch`` counts a whole batch of lines with a ``Counter`` (C speed) and
emits each distinct word once, the combiner adds the partial counts, and
reducers add them across maps.
"""
from collections import Counter

import mapred


def count_batch(lines):
    counts = Counter()
    for line in lines:
        counts.update(line.split())
    return counts.items()


def add(word, counts):
    yield word, sum(counts)


job = mapred.Job(map_batch=count_batch, combiner=add, reducer=add, num_reducers=4, name="wordcount")
