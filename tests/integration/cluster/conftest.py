"""Real master and worker processes on loopback; every process killed by pid when a test ends."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mapred.runtime.procs import Cluster  # noqa: E402

from clusterkit import FAST  # noqa: E402


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """Three 1-slot workers whose reducers fetch every map output over the network."""
    with Cluster(str(tmp_path_factory.mktemp("cluster")), workers=3, slots=1, short_circuit=False,
                 **FAST) as cluster:
        yield cluster


@pytest.fixture
def make_cluster(tmp_path):
    """A fresh cluster per test, for tests that kill or stop workers."""
    made = []

    def make(**kw):
        kw.setdefault("workers", 3)
        for k, v in FAST.items():
            kw.setdefault(k, v)
        c = Cluster(str(tmp_path / f"c{len(made)}"), **kw)
        made.append(c)
        c.start()
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()
