"""Rule runs in slices (``storage.rulerun``) on a bare NameNode core: the walk, the re-checks, the queue."""
from hypothesis import given, settings
from hypothesis import strategies as st

from mapred.storage import cleanup, rulerun
from mapred.storage.housekeeping import Housekeeper
from mapred.storage.namespace import Namespace
from mapred.storage.namesystem import Namesystem, Settings

T0 = 1_764_547_200.0
DAY = 86400.0


def core_with(files):
    """``files``: ``{path: age in seconds}``, each a 100-byte file."""
    ns = Namespace()
    for i, (p, age) in enumerate(sorted(files.items())):
        for op in ns.add_file_ops(p, 1, 1024, [[i + 1, 100]], T0 - age):
            ns.apply(op)
    core = Namesystem(ns, Settings(replication=1))
    core.set_safemode("leave")
    return core


def rules(*raw, cap=1000):
    return cleanup.parse_rules({"rule": list(raw), "max_deletions_per_run": cap})


PATHS = st.lists(st.lists(st.sampled_from("abcde"), min_size=1, max_size=4), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(paths=PATHS, budget=st.integers(1, 7))
def test_a_walk_in_slices_equals_one_walk(paths, budget):
    files = {}
    for parts in paths:
        p = "/" + "/".join(parts)
        if not any(q == p or q.startswith(p + "/") or p.startswith(q + "/") for q in files):
            files[p] = len(files) * 10.0
    core = core_with(files)
    walker = cleanup.SnapshotWalker(core.ns)
    steps = 0
    while not walker.step(budget):
        steps += 1
    assert walker.snapshot == cleanup.snapshot(core.ns)
    assert steps >= (walker.visited - 1) // budget


def test_a_walk_survives_the_tree_changing_between_slices():
    core = core_with({f"/d{i}/f{j}": DAY for i in range(5) for j in range(5)})
    walker = cleanup.SnapshotWalker(core.ns)
    walker.step(3)                                # inside /d0
    core.delete("/d3", True)                      # not entered yet: never seen
    core.rename("/d0", "/moved", T0)              # entered: its entries keep the old name
    while not walker.step(3):
        pass
    paths = {e.path for e in walker.snapshot.entries}
    assert "/d3" not in paths and "/d0/f4" in paths and "/d4/f4" in paths


def test_actions_whose_path_changed_since_the_snapshot_are_skipped_not_done():
    core = core_with({"/tmp/old/a": 10 * DAY, "/tmp/stale": 10 * DAY, "/tmp/gone": 10 * DAY,
                      "/tmp/pinme": 10 * DAY, "/keep": 0})
    keeper = Housekeeper(core, rules({"id": "tmp", "path": "/tmp/*", "expire_after": "1d",
                                      "trash": False}), now=T0)
    run = rulerun.RuleRun(keeper, 1, T0)
    while run.state != "applying":
        run.step(T0)
    # between the plan and its application: a write, a deletion and a pin, by others
    core.create("/tmp/old/b", False, 1, 1024, "", T0)
    core.complete("/tmp/old/b", [], T0)
    core.delete("/tmp/gone", False)
    core.pin("/tmp/pinme", "alias champion")
    while not run.step(T0):
        pass
    report = run.report
    skipped = {s["path"]: s["why"] for s in report["skipped"]}
    assert skipped == {"/tmp/old": "changed since the snapshot", "/tmp/gone": "gone since the snapshot",
                       "/tmp/pinme": "now kept by /tmp/pinme (pinned: alias champion)"}
    assert core.ns.lookup("/tmp/stale") is None                    # unchanged: done as planned
    assert core.ns.lookup("/tmp/old/a") is not None and core.ns.lookup("/tmp/pinme") is not None
    assert keeper.metrics.skipped == 3 and keeper.metrics.by_rule["tmp"].deletions == 1


def test_apply_goes_in_bounded_batches_and_a_dry_run_lists_exactly_what_the_real_run_does():
    files = {f"/big/d{i:03d}/f{j}": 2 * DAY for i in range(100) for j in range(50)}
    core = core_with({**files, "/small/x": 2 * DAY})
    keeper = Housekeeper(core, rules({"id": "big", "path": "/big/*", "expire_after": "1d", "trash": False},
                                     cap=10**6), now=T0)
    queue = rulerun.RunQueue(keeper, threaded=True)
    dry, real = queue.start(T0, dry_run=True), queue.start(T0)
    removed_per_step, before = [], len(core.ns.lookup("/big").children)
    while queue.busy:
        queue.step(T0)
        after = len(core.ns.lookup("/big").children)
        removed_per_step.append(before - after)
        before = after
    assert dry.state == real.state == "done"
    assert dry.report["actions"] == real.report["actions"] and len(real.report["actions"]) == 100
    assert core.ns.lookup("/big").children == {} and core.ns.lookup("/small/x") is not None
    # 50 files a directory: at most BATCH_FILES // 50 directories per step
    assert max(removed_per_step) <= rulerun.BATCH_FILES // 50 and sum(removed_per_step) == 100
    assert real.report["by_rule"]["big"] == {"deletions": 100, "aborts": 0, "freed_bytes": 500000,
                                             "freed_files": 5000, "pins_honoured": 0}
    assert queue.get(dry.id) is dry and queue.get(999) is None
