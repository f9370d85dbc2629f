"""Trash and retention rules on a real NameNode, through `mapred fs` and `mapred cleanup`."""
import json

import pytest
from click.testing import CliRunner

from mapred.cli import main

RULES = """
max_deletions_per_run = 10

[[rule]]
id = "scratch"
path = "/scratch/*"
expire_after = 0
trash = false

[[rule]]
id = "versions"
path = "/models/m/versions/*"
keep_last = 2
"""


@pytest.mark.timeout(120)
def test_trash_rules_and_dry_run_through_the_cli(make_cluster, tmp_path, monkeypatch):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    cluster = make_cluster(datanodes=1, replication=1,
                           namenode_args=("--cleanup-rules", str(rules)))
    monkeypatch.setenv("MAPRED_USER", "alice")
    runner = CliRunner()

    def run(*args):
        r = runner.invoke(main, list(args))
        assert "Traceback" not in r.output, r.output
        return r

    nn = ("--namenode", cluster.namenode_addr)
    c = cluster.client()
    for i in range(4):
        c.write_bytes(f"/models/m/versions/v{i}/model.bin", b"x" * (10 + i))
    c.write_bytes("/scratch/junk", b"j" * 50)
    c.write_bytes("/data/keep.txt", b"k" * 7)
    c.pin("/models/m/versions/v0", "alias champion")

    # rm goes to the trash; mv restores; --skip-trash does not
    r = run("fs", *nn, "rm", "/data/keep.txt")
    assert r.exit_code == 0 and "/user/alice/.Trash/Current/data/keep.txt" in r.output
    assert run("fs", *nn, "mv", "/user/alice/.Trash/Current/data/keep.txt", "/data/keep.txt").exit_code == 0
    assert c.read_bytes("/data/keep.txt") == b"k" * 7

    dry = json.loads(run("cleanup", *nn, "--dry-run", "--json").output)
    text = run("cleanup", *nn, "--dry-run").output
    assert "[scratch] would DeletePath /scratch/junk" in text
    assert "kept /models/m/versions/v0: pinned by /models/m/versions/v0 (pinned: alias champion)" in text
    real = json.loads(run("cleanup", *nn, "--json").output)
    assert real["actions"] == dry["actions"] and not real["failed"]
    assert sorted(a["path"] for a in real["actions"]) == ["/models/m/versions/v1", "/scratch/junk"]
    assert not c.exists("/scratch/junk")
    assert sorted(e["path"].rsplit("/", 1)[1] for e in c.ls("/models/m/versions")) == ["v0", "v2", "v3"]
    assert c.exists("/user/mapred/.Trash/Current/models/m/versions/v1/model.bin")

    status = json.loads(run("cleanup", *nn, "status").output)
    assert status["metrics"]["by_rule"]["scratch"]["bytes_freed"] == 50
    assert status["metrics"]["pins_honoured"] >= 1 and status["metrics"]["runs"] == 1

    # replace the rules through the NameNode (as the REST PUT does); they are saved to the file
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rule": [{"id": "all-tmp", "path": "/tmp/**", "expire_after": "1d"}]}))
    shown = json.loads(run("cleanup", *nn, "rules", str(other)).output)
    assert [r["id"] for r in shown["rules"]] == ["all-tmp"]
    assert "all-tmp" in rules.read_text()

    r = run("fs", *nn, "rm", "-r", "--skip-trash", "/data")
    assert r.exit_code == 0 and "deleted" in r.output and not c.exists("/data")
    assert not c.exists("/user/alice/.Trash/Current/data/keep.txt")
    run("fs", *nn, "rm", "/models/m/versions/v3/model.bin")
    r = run("fs", *nn, "expunge", "--immediate")
    assert r.exit_code == 0 and "expunged /user/alice/.Trash/Current" in r.output
    assert not c.exists("/user/alice/.Trash/Current")
    r = run("cleanup", *nn, "rules", str(tmp_path / "missing.toml"))
    assert r.exit_code == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "x"\npath = "tmp"\nexpire_after = "7d"\n')
    r = run("cleanup", *nn, "rules", str(bad))
    assert r.exit_code == 1 and "must be absolute" in r.output
