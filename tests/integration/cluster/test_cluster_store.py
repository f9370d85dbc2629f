"""A job reading and writing the block store on a cluster started with DataNodes."""
import pytest

from mapred.io.outputs import Result
from mapred.testing import assert_matches_reference

from clusterkit import wordcount, write_text


@pytest.mark.timeout(120)
def test_wordcount_from_mrfs_runs_node_local_and_commits_into_the_store(make_cluster, tmp_path):
    cluster = make_cluster(workers=2, datanodes=2)
    local = write_text(tmp_path / "in.txt", 3000)
    store = cluster.storage.client()
    store.mkdir("/data", parents=True)
    store.put(local, "/data/in.txt")
    uri = cluster.namenode_uri()
    job = wordcount(reducers=2, split=16 * 1024)
    result = job.run(f"{uri}/data/in.txt", f"{uri}/out", cluster=cluster.client())
    maps = result.counters["job"]
    assert maps.get("maps_node_local", 0) >= 1 and "maps_non_local" not in maps
    assert store.exists("/out/_SUCCESS")
    assert_matches_reference(job, [local], Result(f"{uri}/out", result.counters, result.job_id))
    parts = [e for e in store.ls("/out") if e["path"].rsplit("/", 1)[1].startswith("part-")]
    assert result.counters["reduce"]["output_bytes"] == sum(e["length"] for e in parts) > 0
