"""Jobs and results over /api/v1 against a real cluster: visibility by submitter, kill, lookup by key, paging."""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from jobkit import failing, lengths, wordcount, write_words

import mapred
from mapred.errors import JobFailed
from mapred.io.outputs import Result
from mapred.shuffle.partition import hash_partition

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def words_job(service):
    """A word count submitted by alice, with 3 reducers, output in the store; and its committed output."""
    store = service.cluster.storage.client()
    counts = write_words(store, "/user/alice/words.txt", 6000, seed=3)
    with mapred.connect(service.master, user="alice") as cluster:
        result = wordcount(reducers=3).run([service.store_uri + "/user/alice/words.txt"],
                                           service.store_uri + "/user/alice/wc", overwrite=True, cluster=cluster)
    committed = dict(Result(result.path))
    assert {k: int(v) for k, v in committed.items()} == counts
    return result.job_id, committed


def test_lookup_equals_committed_output_for_every_key(service, words_job):
    job_id, committed = words_job
    alice = service.token("alice")
    with service.client(alice) as c:
        for key, value in committed.items():
            # dots escaped too: clients drop "." and ".." path segments before sending
            r = c.get(f"/api/v1/jobs/{job_id}/results/{quote(key, safe='').replace('.', '%2E')}")
            assert r.status_code == 200, (key, r.text)
            body = r.json()
            assert body["key"] == key and body["value"] == value and body["values"] == [value]
            assert body["part"] == f"part-{hash_partition(key, 3):05d}" and body["scanned"] == []
        r = c.get(f"/api/v1/jobs/{job_id}/results/not-a-word")
        assert r.status_code == 404 and r.json()["error"]["type"] == "NoSuchKey"


def test_paging_returns_every_record_once_in_part_order(service, words_job):
    job_id, committed = words_job
    seen, cursor, pages = [], None, 0
    with service.client() as c:
        while True:
            params = {"limit": 97, **({"cursor": cursor} if cursor else {})}
            page = c.get(f"/api/v1/jobs/{job_id}/results", params=params).json()
            assert len(page["records"]) <= 97
            seen += [(r["key"], r["value"]) for r in page["records"]]
            pages += 1
            cursor = page["next"]
            if cursor is None:
                break
        assert seen == list(committed.items()) and pages == -(-len(committed) // 97)
        for bad in ("zzzz", "W1swLDAsMF0", "bm90IGpzb24"):
            r = c.get(f"/api/v1/jobs/{job_id}/results", params={"cursor": bad})
            assert r.status_code == 400 and "cursor" in r.json()["error"]["message"]


def test_msgpack_output_int_keys(service):
    store = service.cluster.storage.client()
    write_words(store, "/data/len.txt", 500, seed=5)
    with mapred.connect(service.master, user="alice") as cluster:
        result = lengths(2).run([service.store_uri + "/data/len.txt"], service.store_uri + "/user/alice/len",
                                overwrite=True, cluster=cluster)
    committed = dict(Result(result.path))
    with service.client(service.token("alice")) as c:
        for n, count in committed.items():
            body = c.get(f"/api/v1/jobs/{result.job_id}/results/{n}").json()
            assert body["value"] == count and body["scanned"] == []
        assert c.get(f"/api/v1/jobs/{result.job_id}/results/abc").status_code == 404
        page = c.get(f"/api/v1/jobs/{result.job_id}/results", params={"limit": 3}).json()
        assert [r["key"] for r in page["records"]] == list(committed)[:3]


def test_job_detail_tasks_logs_and_visibility(service, words_job):
    job_id, _ = words_job
    alice, bob = service.token("alice"), service.token("bob")
    with service.client(alice) as a:
        j = a.get(f"/api/v1/jobs/{job_id}").json()
        assert j["state"] == "SUCCEEDED" and j["submitter"] == "alice" and j["name"] == "wordcount"
        assert j["phases"]["map"]["fraction"] == 1.0 and j["phases"]["reduce"] == {"done": 3, "total": 3,
                                                                                   "fraction": 1.0}
        assert j["duration_s"] > 0 and j["counters"]["job"]
        tasks = a.get(f"/api/v1/jobs/{job_id}/tasks").json()["tasks"]
        assert len([t for t in tasks if "-r-" in t["task"]]) == 3
        assert all(t["state"] == "SUCCEEDED" and t["attempts"][0]["host"] for t in tasks)
        lines = a.get(f"/api/v1/jobs/{job_id}/logs").json()["lines"]
        assert any("submitted" in line for line in lines) and any("committed" in line or "succeeded" in line
                                                                  for line in lines)
        listed = a.get("/api/v1/jobs", params={"status": "SUCCEEDED"}).json()["jobs"]
        assert job_id in [x["job_id"] for x in listed] and {x["submitter"] for x in listed} == {"alice"}
    with service.client(bob) as b:
        assert job_id not in [x["job_id"] for x in b.get("/api/v1/jobs").json()["jobs"]]
        for path in ("", "/tasks", "/logs", "/results", "/results/w1"):
            r = b.get(f"/api/v1/jobs/{job_id}{path}")
            assert r.status_code == 403 and "bob" in r.json()["error"]["message"], path
        r = b.put(f"/api/v1/jobs/{job_id}/state", json={"state": "KILLED"})
        assert r.status_code == 403
    with service.client() as admin:
        assert admin.get(f"/api/v1/jobs/{job_id}").json()["submitter"] == "alice"
        assert admin.get("/api/v1/jobs/nosuchjob").status_code == 404
        assert admin.get("/api/v1/jobs/bad-id!").status_code == 400


def test_list_paging_and_filters(service, words_job):
    with service.client() as c:
        everything = c.get("/api/v1/jobs", params={"limit": 1000}).json()["jobs"]
        ids, after, got = [j["job_id"] for j in everything], None, []
        while True:
            page = c.get("/api/v1/jobs", params={"limit": 1, **({"after": after} if after else {})}).json()
            got += [j["job_id"] for j in page["jobs"]]
            after = page["next"]
            if after is None:
                break
        assert got == ids
        assert c.get("/api/v1/jobs", params={"status": "BOGUS"}).status_code == 400
        assert c.get("/api/v1/jobs", params={"limit": 0}).status_code == 400
        assert c.get("/api/v1/jobs", params={"after": "unknownjob"}).status_code == 400


def test_kill_is_idempotent_and_checked(service, words_job):
    store = service.cluster.storage.client()
    write_words(store, "/user/carl/slow.txt", 400, seed=9)
    carl = service.token("carl")
    with mapred.connect(service.master, user="carl") as cluster:
        handle = cluster.submit(wordcount(reducers=1, map_sleep=0.05), [service.store_uri + "/user/carl/slow.txt"],
                                service.store_uri + "/user/carl/slow-out", overwrite=True)
        with service.client(carl) as c:
            url = f"/api/v1/jobs/{handle.job_id}/state"
            assert c.put(url, content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
            assert c.put(url, content=b'{"state": "KILLED"}').status_code == 415
            r = c.put(url, json={"state": "RUNNING"})
            assert r.status_code == 400 and "state" in r.json()["error"]["message"]
            r = c.put(url, json={"state": "KILLED"})
            assert r.status_code == 200 and r.json()["requested"] == "KILLED"
            deadline = time.monotonic() + 60
            while c.get(f"/api/v1/jobs/{handle.job_id}").json()["state"] != "KILLED":
                assert time.monotonic() < deadline
            again = c.put(url, json={"state": "KILLED"})
            assert again.status_code == 200 and again.json()["state"] == "KILLED"
            r = c.get(f"/api/v1/jobs/{handle.job_id}/results")
            assert r.status_code == 409 and "KILLED" in r.json()["error"]["message"]
    job_id, _ = words_job
    with service.client() as admin:
        r = admin.put(f"/api/v1/jobs/{job_id}/state", json={"state": "KILLED"})
        assert r.status_code == 409 and "SUCCEEDED" in r.json()["error"]["message"]


def test_failed_job_shows_its_traceback(service):
    store = service.cluster.storage.client()
    write_words(store, "/user/dana/bad.txt", 300, seed=1, vocab=20)
    with mapred.connect(service.master, user="dana") as cluster:
        handle = cluster.submit(failing(), [service.store_uri + "/user/dana/bad.txt"],
                                service.store_uri + "/user/dana/bad-out", overwrite=True)
        with pytest.raises(JobFailed):
            handle.wait(timeout=120)
    with service.client(service.token("dana")) as c:
        j = c.get(f"/api/v1/jobs/{handle.job_id}").json()
        assert j["state"] == "FAILED" and "refusing the line" in j["error"]["message"]
        assert "Traceback" in j["error"]["traceback"] and "ValueError" in j["error"]["traceback"]
        failed = [a for t in c.get(f"/api/v1/jobs/{handle.job_id}/tasks").json()["tasks"] for a in t["attempts"]
                  if a["state"] == "FAILED"]
        assert failed and failed[0]["error"]["offset"] is not None
