"""Helpers for the format tests: write records with a format's writer, read a file back split by split."""
import pytest

from mapred import formats
from mapred.formats.base import BadRecords, Meter


def write_records(path, fmt, records, **options):
    """Write ``(key, value)`` pairs (or bare records) with ``fmt``'s writer to one local file."""
    with open(path, "wb") as f:
        w = formats.open_writer(fmt, f, options, BadRecords("fail"), str(path))
        for rec in records:
            key, value = rec if fmt == "seq" else (None, rec)
            w.write(key, value)
        w.close()


def read_back(path, fmt, split_size, bad=None, **options):
    """Every record of ``path``, split by split in order, and the splits (at most ~64 of them)."""
    import os
    split_size = max(split_size, os.path.getsize(path) // 64)
    splits = formats.plan(str(path), fmt, split_size, options)
    out = []
    bad = bad or BadRecords("fail")
    for i, s in enumerate(splits):
        s = type(s)(i, s.fmt, s.path, s.start, s.end, s.hosts, s.dataset, s.extra)
        pairs = formats.open_reader(s, Meter(), bad).records()
        out.extend(pairs if fmt == "seq" else (rec for _, rec in pairs))
    return out, splits


@pytest.fixture(scope="module")
def cluster():
    import mapred
    from mapred.testing import kill_pids
    c = mapred.LocalCluster(2)
    pids = c.pids()
    try:
        yield c
    finally:
        c.close()
        kill_pids(pids)
