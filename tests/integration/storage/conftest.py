"""Real NameNode/DataNode processes on loopback, killed by pid when a test ends."""
import pytest

from mapred.storage import pipeline
from mapred.storage.minicluster import StorageCluster

from storagekit import BLOCK, FAST_ENV


@pytest.fixture(autouse=True)
def fast_pipeline(monkeypatch):
    """Pipeline deadlines of 1 s in this process too (the cluster gets them via env)."""
    monkeypatch.setattr(pipeline, "ACK_TIMEOUT", 1.0)


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """One 3-DataNode cluster for the read/write tests of a module."""
    with StorageCluster(tmp_path_factory.mktemp("shared"), datanodes=3, block_size=BLOCK,
                        replication=3, dead_timeout=2.0, env=FAST_ENV) as cluster:
        yield cluster


@pytest.fixture
def make_cluster(tmp_path):
    """A fresh cluster per test (for tests that kill things)."""
    made = []

    def make(**kw):
        kw.setdefault("block_size", BLOCK)
        kw.setdefault("dead_timeout", 2.0)
        kw.setdefault("env", FAST_ENV)
        cluster = StorageCluster(tmp_path / f"c{len(made)}", **kw)
        made.append(cluster)
        return cluster.__enter__()

    try:
        yield make
    finally:
        for cluster in made:
            cluster.stop()

