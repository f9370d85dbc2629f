"""Cleanup over HTTP against the real service: rules, runs, metrics, and WebHDFS DELETE through the trash.

Rules set here only ever name ``/cleanup-t/...`` (the service's cluster is
shared by the whole session) and are emptied again when each test ends.
"""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.timeout(180)
W = "/webhdfs/v1"
RULES = {"max_deletions_per_run": 50, "interval": "1h", "rule": [
    {"id": "scratch", "path": "/cleanup-t/scratch/*", "expire_after": 0, "trash": False},
    {"id": "versions", "path": "/cleanup-t/models/m/versions/*", "keep_last": 2},
]}


@pytest.fixture
def http(service):
    with service.client() as c:
        try:
            yield c
        finally:
            assert c.put("/api/v1/cleanup/rules", json={"rule": []}).status_code == 200


def metric(text: str, name: str, **labels) -> float:
    """The value of one series in Prometheus text (labels in any order)."""
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if got == labels:
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no series {name}{labels}")


def test_rules_are_read_by_anyone_set_by_admins_and_bad_ones_say_what_is_wrong(service, http):
    user = service.token("rhea")
    with service.client(user) as u:
        assert u.get("/api/v1/cleanup/rules").json()["rules"] == []
        r = u.put("/api/v1/cleanup/rules", json=RULES)
        assert r.status_code == 403 and "not an admin" in r.json()["error"]["message"]
    bad = [
        ({"rule": [{"id": "x", "path": "/a/*", "expire_after": "soon"}]}, "'x' expire_after: 'soon' is not a duration"),
        ({"rule": [{"id": "x", "path": "/a/*"}]}, "names no condition"),
        ({"rule": [{"path": "/a/*", "keep_last": 1}]}, "needs a non-empty string 'id'"),
        ({"rule": [{"id": "x", "path": "a/*", "keep_last": 1}]}, "must be absolute"),
        ({"rule": [{"id": "x", "path": "/a", "keep_last": -1}]}, "keep_last: -1 must be a whole number"),
        ({"rule": [{"id": "x", "path": "/a", "keep_last": 1, "colour": "red"}]}, "unknown key(s) ['colour']"),
        ({"rule": [{"id": "x", "path": "/a", "keep_last": 1}, {"id": "x", "path": "/b", "keep_last": 1}]},
         "rule id 'x' appears twice"),
        ({"max_deletions_per_run": "lots", "rule": []}, "max_deletions_per_run 'lots'"),
        ([1, 2], "invalid body"),
    ]
    for doc, says in bad:
        r = http.put("/api/v1/cleanup/rules", json=doc)
        assert r.status_code == 400 and says in r.json()["error"]["message"], (doc, r.text)
    r = http.put("/api/v1/cleanup/rules", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = http.put("/api/v1/cleanup/rules", content=b"x = 1", headers={"content-type": "application/toml"})
    assert r.status_code == 415
    assert http.get("/api/v1/cleanup/rules").json()["rules"] == []        # nothing bad was installed
    r = http.put("/api/v1/cleanup/rules", json=RULES)
    assert r.status_code == 200, r.text
    got = http.get("/api/v1/cleanup/rules").json()
    assert [x["id"] for x in got["rules"]] == ["scratch", "versions"]
    assert got["max_deletions_per_run"] == 50 and got["interval"] == 3600


def test_dry_run_then_run_report_actions_freed_bytes_per_rule_and_metrics(service, http):
    store = service.cluster.storage.client()
    for i in range(4):
        store.write_bytes(f"/cleanup-t/models/m/versions/{i}/model.bin", b"m" * (100 + i))
    store.write_bytes("/cleanup-t/scratch/junk", b"j" * 500)
    store.write_bytes("/cleanup-t/scratch/pinned", b"p" * 50)
    store.pin("/cleanup-t/scratch/pinned", "kept by the test")
    assert http.put("/api/v1/cleanup/rules", json=RULES).status_code == 200
    with service.client(service.token("rhea")) as u:
        assert u.post("/api/v1/cleanup/runs", params={"dry_run": "true"}).status_code == 403
    dry = http.post("/api/v1/cleanup/runs", params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    dry = dry.json()
    assert dry["dry_run"] is True and store.exists("/cleanup-t/scratch/junk")
    paths = sorted(a["path"] for a in dry["actions"])
    assert paths == ["/cleanup-t/models/m/versions/0", "/cleanup-t/models/m/versions/1", "/cleanup-t/scratch/junk"]
    assert dry["by_rule"]["scratch"] == {"deletions": 1, "aborts": 0, "freed_bytes": 500, "freed_files": 1,
                                         "pins_honoured": 1}
    assert dry["by_rule"]["versions"]["freed_bytes"] == 201 and dry["freed_bytes"] == 701
    assert [h["path"] for h in dry["honoured"]] == ["/cleanup-t/scratch/pinned"]
    real = http.post("/api/v1/cleanup/runs", params={"dry_run": "false"}).json()
    strip = lambda acts: [{k: v for k, v in a.items() if k != "reason"} for a in acts]
    assert strip(real["actions"]) == strip(dry["actions"]) and not real["failed"] and not real["skipped"]
    assert not store.exists("/cleanup-t/scratch/junk") and store.exists("/cleanup-t/scratch/pinned")
    assert [e["path"].rsplit("/", 1)[1] for e in store.ls("/cleanup-t/models/m/versions")] == ["2", "3"]
    # versions went to the trash of mapred (they are not under /user/NAME): restorable
    assert store.exists("/user/mapred/.Trash/Current/cleanup-t/models/m/versions/0/model.bin")
    st = http.get(f"/api/v1/cleanup/runs/{real['run']}").json()
    assert st["state"] == "done" and st["report"]["freed_bytes"] == 701
    assert http.get("/api/v1/cleanup/runs/999999").status_code == 404
    status = http.get("/api/v1/cleanup/status").json()["metrics"]
    assert status["by_rule"]["scratch"]["bytes_freed"] >= 500
    text = http.get("/metrics").text
    assert metric(text, "mapred_cleanup_freed_bytes_total", rule="scratch") == status["by_rule"]["scratch"]["bytes_freed"]
    assert metric(text, "mapred_cleanup_freed_files_total", rule="versions") == status["by_rule"]["versions"]["files_freed"]
    assert metric(text, "mapred_cleanup_trashed_bytes_total", rule="versions") >= 201
    assert metric(text, "mapred_cleanup_pins_honoured_total") >= 1
    assert metric(text, "mapred_cleanup_last_run_timestamp_seconds") == pytest.approx(status["last_run_time"])
    assert metric(text, "mapred_cleanup_runs_total") >= 1 and metric(text, "mapred_cleanup_dry_runs_total") >= 1
    store.pin("/cleanup-t/scratch/pinned", "kept by the test", on=False)


def test_webhdfs_delete_goes_to_the_authenticated_users_trash(service, http):
    alice = service.token("alice-t")
    with service.client(alice) as a:
        for name in ("f.txt", "g.txt", "h.txt"):
            r = a.put(W + f"/user/alice-t/d/{name}", params={"op": "CREATE"})
            assert a.put(r.headers["location"], content=b"data " + name.encode()).status_code == 201
        assert a.delete(W + "/user/alice-t/d/f.txt", params={"op": "DELETE"}).json() == {"boolean": True}
        where = "/user/alice-t/.Trash/Current/user/alice-t/d/f.txt"
        assert a.get(W + where, params={"op": "OPEN"}).content == b"data f.txt"
        # a self-declared name is no identity: still alice-t's trash
        r = a.delete(W + "/user/alice-t/d/g.txt", params={"op": "DELETE", "user.name": "mallory"})
        assert r.json() == {"boolean": True}
        assert a.get(W + "/user/alice-t/.Trash/Current/user/alice-t/d/g.txt", params={"op": "GETFILESTATUS"}).status_code == 200
        assert http.get(W + "/user/mallory", params={"op": "GETFILESTATUS"}).status_code == 404
        # restore is a rename out of the trash
        r = a.put(W + where, params={"op": "RENAME", "destination": "/user/alice-t/d/f.txt"})
        assert r.json() == {"boolean": True} and a.get(W + "/user/alice-t/d/f.txt", params={"op": "OPEN"}).content == b"data f.txt"
        # skiptrash=true: gone at once, nothing in the trash
        r = a.delete(W + "/user/alice-t/d/h.txt", params={"op": "DELETE", "skiptrash": "true"})
        assert r.json() == {"boolean": True}
        assert a.get(W + "/user/alice-t/.Trash/Current/user/alice-t/d/h.txt", params={"op": "GETFILESTATUS"}).status_code == 404
        # deleting your home would delete your trash: refused, saying how
        r = a.delete(W + "/user/alice-t", params={"op": "DELETE", "recursive": "true"})
        assert r.status_code == 403 and "skiptrash=true" in r.json()["RemoteException"]["message"]
        # deleting inside the trash deletes for good
        assert a.delete(W + where.replace("f.txt", "g.txt"), params={"op": "DELETE"}).json() == {"boolean": True}
        assert a.get(W + where.replace("f.txt", "g.txt"), params={"op": "GETFILESTATUS"}).status_code == 404
    r = http.put(W + "/tmp/cleanup-admin.txt", params={"op": "CREATE"})
    assert http.put(r.headers["location"], content=b"x").status_code == 201
    assert http.delete(W + "/tmp/cleanup-admin.txt", params={"op": "DELETE"}).json() == {"boolean": True}
    r = http.get(W + "/user/root-admin/.Trash/Current/tmp/cleanup-admin.txt", params={"op": "GETFILESTATUS"})
    assert r.status_code == 200
