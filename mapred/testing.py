"""Public test helpers: clusters that clean up after themselves, the reference check, strategies.

``ClusterPool`` keeps one ``LocalCluster`` per worker count for a test
session and kills every executor by pid at the end, even after a failure.
``assert_matches_reference`` is the guarding property in one call.
"""
from __future__ import annotations

import os
import signal

from mapred.runtime.local import LocalCluster
from mapred.io.outputs import Result
from mapred.reference import as_text, run_reference


class ClusterPool:
    """Embedded clusters by size, shared by many tests; ``close()`` kills their processes by pid."""

    def __init__(self, **config) -> None:
        from mapred import config as configmod
        self.config = configmod.load(**config)
        self.clusters: dict[int, LocalCluster] = {}

    def get(self, workers: int) -> LocalCluster:
        """The pool's embedded cluster of ``workers`` executors (made on first use)."""
        if workers not in self.clusters:
            self.clusters[workers] = LocalCluster(workers, config=self.config)
        return self.clusters[workers]

    def close(self) -> None:
        """Close every cluster the pool made (their executors are killed by pid)."""
        for cluster in self.clusters.values():
            pids = cluster.pids()
            try:
                cluster.close()
            finally:
                kill_pids(pids)
        self.clusters.clear()


def kill_pids(pids) -> None:
    """SIGKILL each pid that is still running (ignoring ones already gone)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def assert_matches_reference(job, paths: list[str], result: Result) -> None:
    """The run's committed output equals the sequential reference's, as a multiset of pairs."""
    expected = run_reference(job, paths)
    if job.output_format == "text":
        expected, got = as_text(expected), sorted(result)
    else:
        from mapred.io.codec import order_key
        expected = sorted(expected, key=lambda kv: (order_key(kv[0]), repr(kv[1])))
        got = sorted(result, key=lambda kv: (order_key(kv[0]), repr(kv[1])))
    assert got == expected, f"output differs from the reference: {len(got)} vs {len(expected)} pairs"


def text_strategy():
    """Hypothesis: text files with varied line lengths, blank lines, unicode and \\r\\n endings."""
    from hypothesis import strategies as st
    word = st.text(alphabet="abcdeé \t", min_size=0, max_size=6)
    line = st.lists(word, max_size=6).map(" ".join)
    ending = st.sampled_from(["\n", "\r\n"])
    return st.tuples(st.lists(st.tuples(line, ending), max_size=40), st.booleans()).map(
        lambda t: "".join(l + e for l, e in t[0]) + ("tail" if t[1] else ""))


def write_text_files(folder, texts) -> list[str]:
    """Write each of ``texts`` (what ``text_strategy`` draws) as UTF-8 ``f<i>.txt`` in ``folder``; their paths."""
    paths = []
    for i, text in enumerate(texts):
        path = os.path.join(str(folder), f"f{i}.txt")
        with open(path, "wb") as f:
            f.write(text.encode("utf-8"))
        paths.append(path)
    return paths
