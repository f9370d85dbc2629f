"""The engine reads and writes mrfs:// paths: splits follow blocks and carry replica hosts."""
from collections import Counter

import pytest

import mapred
from mapred.io.inputs import plan_splits

from storagekit import BLOCK
from wordcount import add, count_batch   # examples/ is on the tests' path (tests/conftest.py)


@pytest.mark.timeout(120)
def test_wordcount_from_and_to_mrfs(shared_cluster):
    c = shared_cluster.client()
    text = "".join(f"w{i % 97} w{i % 13} hello\n" for i in range(40000)).encode()
    c.write_bytes("/engine/in/a.txt", text, overwrite=True)
    uri = shared_cluster.namenode_uri
    splits = plan_splits([uri + "/engine/in"], BLOCK)
    assert len(splits) == -(-len(text) // BLOCK)
    assert all(s.hosts for s in splits)
    job = mapred.Job(map_batch=count_batch, combiner=add, reducer=add, num_reducers=3)
    job.run(uri + "/engine/in", uri + "/engine/out", overwrite=True)
    got = {}
    for entry in c.ls("/engine/out"):
        if "part-" in entry["path"]:
            for line in c.read_bytes(entry["path"]).decode().splitlines():
                word, n = line.split("\t")
                got[word] = int(n)
    assert got == dict(Counter(text.decode().split()))
    assert c.exists("/engine/out/_SUCCESS")
