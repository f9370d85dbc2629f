"""Word count: tokens are exactly ``str.split()`` of each line; output lines ``word<TAB>count``.

    mapred run examples/wordcount.py INPUT... -o OUT

Large batches and in-mapper combining: the map reads its split as decoded
blocks of whole lines (``input_mode="text"``), keeps one ``Counter`` in its
per-task ``state``, feeds it a whole block per ``split`` call at C speed, and
emits each distinct word once at the end.  The combiner and reducers add the partial
counts.  ``count_batch`` alone is a stateless batch mapper for the same job.
"""
from collections import Counter

import mapred


def start_counting():
    mapred.context().state["counts"] = Counter()


def count_into_state(text):
    # one split of a block of whole lines gives the same tokens as splitting
    # each line (a newline is whitespace too), at a fraction of the calls
    mapred.context().state["counts"].update(text.split())
    return ()


def emit_counts():
    return mapred.context().state.pop("counts").items()


def count_batch(lines):
    counts = Counter()
    for line in lines:
        counts.update(line.split())
    return counts.items()


def add(word, counts):
    yield word, sum(counts)


job = mapred.Job(mapper_init=start_counting, map_batch=count_into_state, input_mode="text",
                 mapper_final=emit_counts, combiner=add, reducer=add, num_reducers=4, name="wordcount")


if __name__ == "__main__":   # python examples/wordcount.py [INPUT... -o OUT]
    from mapred.cli.run import example_main
    example_main(__file__)
