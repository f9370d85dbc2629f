"""Retention rules over random trees, ages, pins and rules (the cleanup issue's property tests).

Each example builds a real NameNode core (``Namesystem`` with its namespace)
holding a random tree, asks the ``Housekeeper`` for a dry run, then for a
real run, and checks: nothing pinned, held or open for writing (nor anything
under or above it) is deleted; the dry run lists exactly the real run's
actions; ``keep_last`` keeps exactly the N newest of each directory (plus
pinned ones); the deletion cap holds.
"""
from hypothesis import given, settings, strategies as st

from mapred.storage import cleanup
from mapred.storage.housekeeping import Housekeeper
from mapred.storage.namespace import Namespace
from mapred.storage.namesystem import Namesystem, Settings

NOW = 1_000_000.0
NAMES = st.sampled_from(["a", "b", "c", "d"])
REL = st.lists(NAMES, min_size=1, max_size=3)
ROOTS = st.sampled_from(["/data", "/models/m/versions", "/tmp"])
FILE = st.tuples(ROOTS, REL, st.integers(0, 5000), st.floats(0, 20 * 86400))


def build(files) -> tuple[Namesystem, dict]:
    """A core holding ``files`` ``(root, parts, size, age)``; returns it and {path: (size, mtime)}."""
    ns = Namespace()
    made: dict = {}
    block = 1
    for root, parts, size, age in files:
        path = root + "/" + "/".join(parts)
        if any(p == path or p.startswith(path + "/") or path.startswith(p + "/") for p in made):
            continue   # a file cannot sit where a directory is, or under a file
        for op in ns.add_file_ops(path, 1, 1 << 20, [[block, size]], NOW - age):
            ns.apply(op)
        made[path] = (size, NOW - age)
        block += 1
    core = Namesystem(ns, Settings(replication=1))
    core.set_safemode("leave")
    return core, made


RULE = st.builds(
    dict,
    path=st.sampled_from(["/data/*", "/data/**", "/tmp/**", "/models/m/versions/*", "/*", "/data/*/*"]),
    expire_after=st.one_of(st.none(), st.floats(0, 15 * 86400)),
    keep_last=st.one_of(st.none(), st.integers(0, 3)),
    max_bytes=st.one_of(st.none(), st.integers(0, 20000)),
    trash=st.booleans(),
)


def rules_of(raw: list, cap: int) -> cleanup.RuleSet:
    rules = []
    for i, r in enumerate(raw):
        r = {k: v for k, v in r.items() if v is not None}
        if not {"expire_after", "keep_last", "max_bytes"} & set(r):
            r["expire_after"] = 86400
        rules.append(cleanup.parse_rules({"rule": [dict(r, id=f"r{i}")]}).rules[0])
    return cleanup.RuleSet(tuple(rules), cap)


def related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


@settings(max_examples=150, deadline=None)
@given(files=st.lists(FILE, min_size=1, max_size=25), raw=st.lists(RULE, min_size=1, max_size=3),
       cap=st.integers(0, 30), pin_picks=st.lists(st.integers(0, 30), max_size=4),
       hold_pick=st.one_of(st.none(), st.integers(0, 30)))
def test_rules_never_touch_pins_and_dry_run_equals_real_run(files, raw, cap, pin_picks, hold_pick):
    core, made = build(files)
    paths = sorted(made)
    keeper = Housekeeper(core, rules_of(raw, cap), now=NOW)
    pinned = {paths[i % len(paths)] for i in pin_picks}
    for p in pinned:
        core.pin(p, "alias champion")
    held = paths[hold_pick % len(paths)] if hold_pick is not None else None
    if held:
        keeper.hold("job-1", [held.rsplit("/", 1)[0]], 60, NOW)   # a job's input directory
    uncapped = cleanup.plan(cleanup.RuleSet(keeper.rules.rules, 10**9),
                            cleanup.snapshot(core.ns), keeper.pins(NOW), NOW)

    dry = keeper.run(NOW, dry_run=True)
    real = keeper.run(NOW)

    assert dry["actions"] == real["actions"]
    assert real["failed"] == []
    assert len(real["actions"]) <= cap
    assert len(real["actions"]) + real["capped"] == len(uncapped.actions)
    protected = pinned | ({held.rsplit("/", 1)[0]} if held else set())
    for action in real["actions"]:
        assert not any(related(action["path"], p) for p in protected), (action, protected)
    for p in pinned:
        assert core.ns.lookup(p) is not None, p          # still where it was
    if held:
        assert core.ns.lookup(held) is not None
    deleted = [a["path"] for a in real["actions"]]
    for path in made:
        gone = any(path == d or path.startswith(d + "/") for d in deleted)
        assert (core.ns.lookup(path) is None) == gone, path
    core.validate()


@settings(max_examples=150, deadline=None)
@given(ages=st.lists(st.floats(0, 10 * 86400), min_size=1, max_size=12, unique=True),
       n=st.integers(0, 5), pin_picks=st.lists(st.integers(0, 11), max_size=3),
       group_b=st.integers(0, 6))
def test_keep_last_keeps_exactly_the_n_newest(ages, n, pin_picks, group_b):
    files = [("/models/m/versions", [f"v{i}", "model.bin"], 10, age) for i, age in enumerate(ages)]
    files += [("/data", ["b", f"v{i}"], 7, 100.0 * i) for i in range(group_b)]
    core, made = build(files)
    versions = [f"/models/m/versions/v{i}" for i in range(len(ages))]
    pinned = {versions[i % len(versions)] for i in pin_picks}
    for p in pinned:
        core.pin(p, "alias champion")
    rules = cleanup.parse_rules({"rule": [
        {"id": "versions", "path": "/models/m/versions/*", "keep_last": n},
        {"id": "data", "path": "/data/*/*", "keep_last": n}]})
    Housekeeper(core, rules, now=NOW).run(NOW)

    newest = sorted(versions, key=lambda v: (NOW - ages[versions.index(v)], v), reverse=True)[:n]
    survivors = {v for v in versions if core.ns.lookup(v) is not None}
    assert survivors == set(newest) | pinned
    data = [f"/data/b/v{i}" for i in range(group_b)]
    assert {d for d in data if core.ns.lookup(d) is not None} == set(data[:n])


def test_max_bytes_deletes_oldest_first_until_under():
    core, _ = build([("/tmp", [f"f{i}"], 100, 1000.0 - i) for i in range(10)])   # f0 oldest
    rules = cleanup.parse_rules({"rule": [{"id": "cap", "path": "/tmp/*", "max_bytes": 450,
                                           "trash": False}]})
    report = Housekeeper(core, rules, now=NOW).run(NOW)
    assert [a["path"] for a in report["actions"]] == [f"/tmp/f{i}" for i in range(6)]
    assert report["freed_bytes"] == 600
    assert sorted(e["path"] for e in core.listing("/tmp")) == [f"/tmp/f{i}" for i in range(6, 10)]


def test_abort_incomplete_uploads_of_silent_writers():
    core, _ = build([("/data", ["keep"], 1, 0.0)])
    core.create("/data/stale.part", False, 1, 1024, "", NOW - 7200)
    core.create("/data/live.part", False, 1, 1024, "", NOW - 10)
    rules = cleanup.parse_rules({"rule": [{"id": "uploads", "path": "/data/**",
                                           "abort_incomplete_after": "1h"}]})
    keeper = Housekeeper(core, rules, now=NOW)
    report = keeper.run(NOW)
    assert [(a["action"], a["path"]) for a in report["actions"]] == [("AbortUpload", "/data/stale.part")]
    assert sorted(core.writing) == ["/data/live.part"]
    assert keeper.metrics.by_rule["uploads"].aborts == 1
