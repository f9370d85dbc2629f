"""`mapred fs` and friends through click's CliRunner: exit codes and messages, never tracebacks."""
import json

import pytest
from click.testing import CliRunner

from mapred.cli.fs import fs

from storagekit import BLOCK, payload


@pytest.fixture
def run(shared_cluster):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(fs, ["--namenode", shared_cluster.namenode_addr, *args], input=input)
    return invoke


@pytest.mark.timeout(90)
def test_fs_commands_end_to_end(run, tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(payload(2 * BLOCK + 9))
    assert run("mkdir", "-p", "/cli/a/b").exit_code == 0
    r = run("put", str(src), "/cli/a/b/f")
    assert r.exit_code == 0 and f"put {2 * BLOCK + 9} bytes" in r.output
    r = run("put", str(src), "/cli/a/b/f")
    assert r.exit_code == 1 and "already exists" in r.output and "Traceback" not in r.output
    assert run("put", "-f", "--replication", "2", str(src), "/cli/a/b/f").exit_code == 0
    r = run("ls", "/cli/a/b")
    assert r.exit_code == 0 and "/cli/a/b/f" in r.output and str(2 * BLOCK + 9) in r.output
    r = run("cat", "/cli/a/b/f")
    assert r.exit_code == 0 and r.stdout_bytes == src.read_bytes()
    assert run("get", "/cli/a/b/f", str(tmp_path / "out.bin")).exit_code == 0
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    stat = json.loads(run("stat", "/cli/a/b/f").output)
    assert stat["length"] == 2 * BLOCK + 9 and stat["replication"] == 2
    assert "setrep" not in run("setrep", "3", "/cli").output and run("setrep", "3", "/cli").exit_code == 0
    assert json.loads(run("stat", "/cli/a/b/f").output)["replication"] == 3
    assert run("mv", "/cli/a/b/f", "/cli/g").exit_code == 0
    r = run("du", "/cli")
    assert r.exit_code == 0 and "total" in r.output
    r = run("fsck", "/cli")
    assert r.exit_code == 0 and "HEALTHY" in r.output
    r = run("report")
    assert r.exit_code == 0 and "3 live, 0 dead" in r.output
    assert "OFF" in run("safemode", "get").output
    assert "ON" in run("safemode", "enter").output
    r = run("mkdir", "/cli/blocked")
    assert r.exit_code == 1 and "safe mode" in r.output
    assert "OFF" in run("safemode", "leave").output
    assert run("safemode", "wait", "--timeout", "5").exit_code == 0
    r = run("rm", "/cli")
    assert r.exit_code == 1 and "non-empty" in r.output
    assert run("rm", "-r", "/cli").exit_code == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args, words", [
    (["cat", "/nope"], "no such file"),
    (["ls", "/a/../b"], "'..'"),
    (["mkdir", "relative"], "not absolute"),
    (["get", "/nope", "/nonexistent-mapred-dir/x"], "no such file"),
    (["stat", "/nope"], "no such file"),
    (["mv", "/nope", "/x"], "no such file"),
    (["safemode", "sideways"], "Invalid value"),
])
def test_bad_input_is_one_clean_line(run, args, words):
    r = run(*args)
    assert r.exit_code != 0 and words in r.output and "Traceback" not in r.output


def test_missing_namenode_is_explained(monkeypatch):
    monkeypatch.delenv("MAPRED_NAMENODE", raising=False)
    r = CliRunner().invoke(fs, ["ls", "/"])
    assert r.exit_code == 1 and "--namenode" in r.output


@pytest.mark.timeout(60)
def test_fsck_exits_nonzero_when_blocks_are_missing(make_cluster):
    cluster = make_cluster(datanodes=1, replication=1)
    cluster.client().write_bytes("/lonely", payload(100))
    cluster.kill_datanode(0)
    runner = CliRunner()
    from mapred.storage.minicluster import wait_for
    wait_for(lambda: not cluster.client().fsck("/")["healthy"], 10, "the block to be missing")
    r = runner.invoke(fs, ["--namenode", cluster.namenode_addr, "fsck", "/"])
    assert r.exit_code == 1 and "MISSING" in r.output and "UNHEALTHY" in r.output


@pytest.mark.timeout(60)
def test_real_command_line(shared_cluster, tmp_path):
    """One run of the installed entry point, as a user would type it."""
    import os
    import subprocess
    import sys
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello, store\n")
    env = {**os.environ, "MAPRED_NAMENODE": shared_cluster.namenode_addr}
    run = lambda *a: subprocess.run([sys.executable, "-m", "mapred", "fs", *a], env=env,  # noqa: E731
                                    capture_output=True, timeout=30)
    assert run("put", str(src), "/cli-real/hello.txt").returncode == 0
    out = run("cat", "/cli-real/hello.txt")
    assert out.returncode == 0 and out.stdout == b"hello, store\n"
    bad = run("cat", "/cli-real/../x")
    assert bad.returncode == 1 and b"Traceback" not in bad.stderr and b"'..'" in bad.stderr


def test_malformed_namenode_address_is_explained():
    r = CliRunner().invoke(fs, ["--namenode", "tcp://nohostport", "ls", "/"])
    assert r.exit_code == 1 and "tcp://host:port" in r.output


@pytest.mark.timeout(60)
def test_an_mrfs_uri_authority_wins_over_the_configured_namenode(shared_cluster, tmp_path, monkeypatch):
    from mapred.cli import main
    c = shared_cluster.client()
    c.mkdir("/auth", parents=True)
    src = tmp_path / "p1.txt"
    src.write_bytes(b"keep me\n")
    c.put(str(src), "/auth/p1.txt")
    monkeypatch.setenv("MAPRED_NAMENODE", shared_cluster.namenode_addr)
    runner = CliRunner()
    r = runner.invoke(main, ["fs", "rm", "mrfs://127.0.0.1:1/auth/p1.txt"])
    assert r.exit_code == 1 and "127.0.0.1:1" in r.output and "Traceback" not in r.output
    assert c.exists("/auth/p1.txt")                       # the live store was not touched
    uri = shared_cluster.namenode_uri                     # mrfs://H:P, as `cluster up` prints it
    r = runner.invoke(main, ["fs", "--namenode", uri, "cat", "/auth/p1.txt"])
    assert r.exit_code == 0 and r.stdout_bytes == b"keep me\n"
    r = runner.invoke(main, ["fs", "--namenode", "tcp://127.0.0.1:1", "ls", f"{uri}/auth"])
    assert r.exit_code == 0 and "/auth/p1.txt" in r.output
    r = runner.invoke(main, ["fs", "mv", f"{uri}/auth/p1.txt", "mrfs://127.0.0.1:1/x"])
    assert r.exit_code == 1 and "different NameNodes" in r.output


@pytest.mark.timeout(60)
def test_a_dead_namenode_is_reported_as_refused(tmp_path):
    from mapred.cli import main
    r = CliRunner().invoke(main, ["fs", "--namenode", "tcp://127.0.0.1:1", "ls", "/"])
    assert r.exit_code == 1 and "connection refused" in r.output and "Traceback" not in r.output
