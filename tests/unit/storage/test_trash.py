"""The trash and the housekeeper on a bare NameNode core, with time passed in (never slept)."""
import pytest

from mapred.errors import StorageError
from mapred.storage import cleanup, trash
from mapred.storage.housekeeping import Housekeeper
from mapred.storage.journal import Journal
from mapred.storage.namespace import Namespace
from mapred.storage.namesystem import Namesystem, Settings

HOUR = 3600.0
T0 = 1_764_547_200.0     # 2025-12-01 00:00 UTC


def core_with(paths, now=T0, **settings):
    ns = Namespace()
    for i, p in enumerate(paths):
        for op in ns.add_file_ops(p, 1, 1024, [[i + 1, 100]], now):
            ns.apply(op)
    core = Namesystem(ns, Settings(replication=1, **settings))
    core.set_safemode("leave")
    return core


def exists(core, path):
    return core.ns.lookup(path) is not None


def test_rm_moves_to_the_users_trash_and_mv_restores_it():
    core = core_with(["/data/a/part-0", "/data/b"])
    where = core.remove("/data/a", True, "alice", True, T0)
    assert where == "/user/alice/.Trash/Current/data/a"
    assert not exists(core, "/data/a") and exists(core, where + "/part-0")
    core.validate()   # block paths followed the move
    core.rename(where, "/data/a", T0 + 1)
    assert exists(core, "/data/a/part-0")
    core.validate()


def test_a_second_delete_of_the_same_name_gets_a_suffix_and_trash_is_deleted_outright():
    core = core_with(["/x"])
    first = core.remove("/x", False, "bob", True, T0)
    core.create("/x", False, 1, 1024, "", T0)
    core.complete("/x", [], T0)
    second = core.remove("/x", False, "bob", True, T0 + 5)
    assert first != second and second.startswith(first + ".")
    assert core.remove(second, False, "bob", True, T0 + 6) == ""       # inside the trash: gone
    assert not exists(core, second) and exists(core, first)


def test_skip_trash_and_no_trash_interval_delete_at_once():
    core = core_with(["/a", "/b"])
    assert core.remove("/a", False, "alice", False, T0) == ""
    assert not exists(core, "/a") and not exists(core, "/user")
    off = core_with(["/b"], trash_interval=0)
    assert off.remove("/b", False, "alice", True, T0) == "" and not exists(off, "/b")


def test_refuses_what_would_delete_a_trash_or_a_bad_user():
    core = core_with(["/user/alice/keep"])
    core.remove("/user/alice/keep", False, "alice", True, T0)
    for path in ("/user", "/user/alice"):
        with pytest.raises(StorageError, match="trash"):
            core.remove(path, True, "alice", True, T0)
    with pytest.raises(StorageError, match="user name"):
        core_with(["/z"]).remove("/z", False, "../evil", True, T0)
    with pytest.raises(StorageError, match="non-empty"):
        core_with(["/d/f"]).remove("/d", False, "alice", True, T0)


def test_trash_is_expunged_after_the_interval_by_the_emptier():
    core = core_with(["/old", "/new"], trash_interval=24 * HOUR)
    keeper = Housekeeper(core, now=T0)
    assert keeper.empty_every == HOUR
    core.remove("/old", False, "alice", True, T0)
    keeper.tick(T0 + HOUR)                      # Current becomes a checkpoint
    checkpoints = [e["path"] for e in core.listing("/user/alice/.Trash")]
    assert checkpoints == ["/user/alice/.Trash/251201010000"]
    assert exists(core, checkpoints[0] + "/old")
    core.remove("/new", False, "alice", True, T0 + 2 * HOUR)
    keeper.tick(T0 + 3 * HOUR)
    keeper.tick(T0 + 24 * HOUR)                 # the first checkpoint is 23 h old: kept
    assert exists(core, checkpoints[0] + "/old")
    keeper.tick(T0 + 25 * HOUR)                 # now 24 h old: expunged
    assert not exists(core, checkpoints[0])
    assert any(exists(core, e["path"] + "/new") for e in core.listing("/user/alice/.Trash"))
    keeper.tick(T0 + 28 * HOUR)
    assert core.listing("/user/alice/.Trash") == []
    assert keeper.metrics.trash_expunged == 2
    core.validate()


def test_expunge_immediate_for_one_user():
    core = core_with(["/a", "/b"])
    keeper = Housekeeper(core, now=T0)
    core.remove("/a", False, "alice", True, T0)
    core.remove("/b", False, "bob", True, T0)
    r = keeper.empty_trash(T0, immediate=True, user="alice")
    assert r["expunged"] == ["/user/alice/.Trash/Current"] and r["freed_bytes"] == 100
    assert exists(core, "/user/bob/.Trash/Current/b")


def test_rule_deletions_go_to_the_owners_trash_and_metrics_count_them():
    core = core_with(["/user/carol/tmp/x", "/scratch/y"], now=T0 - 10 * 86400)
    rules = cleanup.parse_rules({"rule": [
        {"id": "home-tmp", "path": "/user/*/tmp/*", "expire_after": "7d"},
        {"id": "scratch", "path": "/scratch/*", "expire_after": "1d", "trash": False}]})
    keeper = Housekeeper(core, rules, now=T0)
    report = keeper.run(T0)
    assert [(a["rule"], a["path"], a["trash"]) for a in report["actions"]] == [
        ("home-tmp", "/user/carol/tmp/x", True), ("scratch", "/scratch/y", False)]
    assert exists(core, "/user/carol/.Trash/Current/user/carol/tmp/x")
    assert not exists(core, "/user/mapred")
    m = keeper.status(T0)["metrics"]
    assert m["by_rule"]["scratch"]["bytes_freed"] == 100 and m["by_rule"]["home-tmp"]["bytes_to_trash"] == 100
    assert m["runs"] == 1 and m["last_run_time"] == T0


def test_the_rules_run_on_their_interval_and_holds_lapse():
    core = core_with(["/tmp/a", "/tmp/b"], now=T0 - 86400)
    rules = cleanup.parse_rules({"interval": "10m", "rule": [
        {"id": "tmp", "path": "/tmp/*", "expire_after": "1h", "trash": False}]})
    keeper = Housekeeper(core, rules, now=T0)
    keeper.hold("job-7", ["/tmp/a"], 900, T0)
    assert keeper.tick(T0 + 599) == []
    done = keeper.tick(T0 + 600)
    assert [a["path"] for a in done[-1]["actions"]] == ["/tmp/b"]
    assert done[-1]["honoured"][0]["path"] == "/tmp/a"          # held: still in use
    done = keeper.tick(T0 + 1200)                               # the hold lapsed at T0 + 900
    assert [a["path"] for a in done[-1]["actions"]] == ["/tmp/a"]
    assert keeper.metrics.pins_honoured == 1


def test_pins_survive_restart_and_follow_renames(tmp_path):
    journal = Journal(str(tmp_path))
    core = Namesystem(journal.load(), Settings(replication=1), log=journal.append)
    core.mkdir("/models/m/v1", True, T0)
    core.pin("/models/m/v1", "alias champion")
    core.rename("/models/m/v1", "/models/m/v9", T0)
    journal.close()
    again = Journal(str(tmp_path)).load()
    assert again.pins == {"/models/m/v9": {"alias champion"}}
    core2 = Namesystem(again, Settings(replication=1))
    core2.pin("/models/m/v9", "alias champion", on=False)
    assert core2.ns.pins == {}


def test_checkpoint_names_round_trip():
    assert trash.checkpoint_name(T0) == "251201000000"
    assert trash.checkpoint_time("251201000000") == T0
    assert trash.checkpoint_time("Current") is None and trash.checkpoint_time("991399999999") is None
