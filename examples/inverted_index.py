"""Inverted index: each word → the sorted list of ``file:offset`` places where a line holds it.

    mapred run examples/inverted_index.py INPUT... -o OUT
"""
import os

import mapred


def postings(offset, line):
    name = os.path.basename(mapred.context().split.path)
    for word in set(line.split()):
        yield word, f"{name}:{offset}"


def merge_places(word, places):
    yield word, sorted(set(p for group in places for p in (group if isinstance(group, list) else [group])))


def index(word, places):
    merged = set()
    for p in places:
        merged.update(p if isinstance(p, list) else [p])
    yield word, " ".join(sorted(merged, key=_place_order))


def _place_order(place):
    name, _, offset = place.rpartition(":")
    return name, int(offset)


job = mapred.Job(mapper=postings, combiner=merge_places, reducer=index, num_reducers=4, name="inverted_index")


if __name__ == "__main__":   # python examples/inverted_index.py [INPUT... -o OUT]
    from mapred.cli.run import example_main
    example_main(__file__)
