"""Node states over HTTP on a private cluster: drain a worker, decommission a DataNode, see it all.

Its own cluster (2 workers, 2 DataNodes, the service), because draining a
worker of the session's shared cluster would leave the other tests none.
The status page is checked in headless Chromium (Debian's, via Playwright).
"""
from __future__ import annotations

import os
import re

import pytest
from servicekit import ServiceHandle

from mapred.runtime.client import connect
from mapred.runtime.procs import Cluster, wait_for
from mapred.service.tokens import TokenStore

pytestmark = pytest.mark.timeout(240)
CHROMIUM = "/usr/bin/chromium"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def elastic(tmp_path_factory):
    root = tmp_path_factory.mktemp("elastic")
    token_file = os.path.join(str(root), "tokens.json")
    admin, _ = TokenStore(token_file).create("ops", "admin")
    with Cluster(os.path.join(str(root), "cluster"), workers=2, slots=1, datanodes=2, dead_timeout=5.0,
                 speculation=False, service=True, token_file=token_file, block_size=1 << 20) as cluster:
        yield ServiceHandle(cluster.service_url, admin, token_file, cluster)


def series(text: str, name: str) -> list[dict]:
    """Every series of ``name``: its labels and value."""
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            out.append({**labels, "value": float(line.rsplit(" ", 1)[1])})
    return out


def test_drain_a_worker_and_decommission_a_datanode_over_http(elastic):
    workers = [w["worker_id"] for w in elastic.cluster.client().workers()]
    assert len(workers) == 2
    leaving, staying = sorted(workers)
    with elastic.client(elastic.token("uma")) as u:
        r = u.put(f"/api/v1/workers/{leaving}/state", json={"state": "DECOMMISSIONING"})
        assert r.status_code == 403
    with elastic.client() as http:
        r = http.put("/api/v1/workers/no-such-worker/state", json={"state": "DECOMMISSIONING"})
        assert r.status_code == 404 and "no worker 'no-such-worker'" in r.json()["error"]["message"]
        for bad in ({"state": "ACTIVE"}, {"state": "GONE"}, {"state": "DECOMMISSIONING", "timeout": -1}, {}):
            r = http.put(f"/api/v1/workers/{leaving}/state", json=bad)
            assert r.status_code == 400 and "invalid body" in r.json()["error"]["message"], (bad, r.text)
        r = http.put(f"/api/v1/workers/{leaving}/state", json={"state": "DECOMMISSIONING"})
        assert r.status_code == 200 and r.json()["state"] in ("DECOMMISSIONING", "DECOMMISSIONED"), r.text
        def node_state(wid):
            view = http.get("/api/v1/cluster").json()
            return next(w["node_state"] for w in view["workers"] if w["worker_id"] == wid)

        wait_for(lambda: node_state(leaving) == "DECOMMISSIONED" or None, 60, "the drained worker to leave")
        assert node_state(staying) == "ACTIVE"
        pid = int(leaving.split("-")[-2])           # HOST-PID-RANDOM
        exited = [p for p in elastic.cluster.worker_procs if p.pid == pid]
        assert exited and exited[0].wait(30) == 0   # a retired worker exits 0
        r = http.put(f"/api/v1/workers/{leaving}/state", json={"state": "DECOMMISSIONING"})
        assert r.status_code == 409 and "DECOMMISSIONED" in r.json()["error"]["message"]

        elastic.cluster.storage.client().write_bytes("/held/by-both", b"x" * 1000)   # a block on each
        dns = sorted(d["dnid"] for d in http.get("/api/v1/cluster").json()["datanodes"])
        assert http.put("/api/v1/datanodes/dn-nope/state", json={"state": "DECOMMISSIONING"}).status_code == 404
        assert http.put(f"/api/v1/datanodes/{dns[0]}/state", json={"state": "DECOMMISSIONED"}).status_code == 400
        r = http.put(f"/api/v1/datanodes/{dns[0]}/state", json={"state": "DECOMMISSIONING"})
        # 2 DataNodes, replication 2: its blocks have nowhere to go, so it stays in progress
        assert r.status_code == 200 and r.json()["state"] == "DECOMMISSIONING", r.text
        metrics = wait_for(lambda: (t := http.get("/metrics").text) and
                           'mapred_nodes{kind="datanode",state="DECOMMISSIONING"} 1.0' in t and t, 10,
                           "the metrics to show the decommission")
        each = {(s["kind"], s["node"]): s["state"] for s in series(metrics, "mapred_node_state")}
        assert each[("worker", leaving)] == "DECOMMISSIONED" and each[("worker", staying)] == "ACTIVE"
        assert each[("datanode", dns[0])] == "DECOMMISSIONING" and each[("datanode", dns[1])] == "ACTIVE"
        assert 'mapred_nodes{kind="worker",state="DECOMMISSIONED"} 1.0' in metrics
        r = http.put(f"/api/v1/datanodes/{dns[0]}/state", json={"state": "ACTIVE"})
        assert r.status_code == 200 and r.json()["state"] == "ACTIVE"


def test_scaling_decisions_reach_the_api_metrics_and_the_page(elastic):
    """The autoscaler's report (the same call ``runtime.autoscale`` makes) is shown with its reason."""
    with connect(elastic.master) as client:
        client.report_scaling({"action": "grow", "count": 2, "workers_before": 1,
                               "reason": "5 tasks waiting with no free slot for 2.0s"},
                              {"min_workers": 1, "max_workers": 4, "up_delay": 2.0, "idle_timeout": 30.0})
        client.report_scaling({"action": "retire", "worker": "w-9", "workers_before": 3,
                               "reason": "idle for 31.0s, holds no map output a running job needs"})
        with pytest.raises(Exception, match="scaling action"):
            client.report_scaling({"action": "explode", "reason": "no"})
    with elastic.client() as http:
        scaling = wait_for(lambda: (v := http.get("/api/v1/cluster").json()["scaling"]) and v["decisions"] and v,
                           10, "the decisions (the service caches cluster facts for a second)")
        assert [(d["seq"], d["action"]) for d in scaling["decisions"]] == [(1, "grow"), (2, "retire")]
        assert scaling["totals"] == {"grow": 1, "retire": 1} and scaling["policy"]["max_workers"] == 4
        text = wait_for(lambda: (t := http.get("/metrics").text) and "mapred_scaling_decisions_total" in t and t,
                        10, "the scaling metrics")
        rows = series(text, "mapred_scaling_decision_timestamp_seconds")
        assert [r["reason"] for r in rows] == ["5 tasks waiting with no free slot for 2.0s",
                                               "idle for 31.0s, holds no map output a running job needs"]
        assert 'mapred_scaling_decisions_total{action="grow"} 1.0' in text
    with elastic.client(elastic.token("uma")) as u:      # a user sees no decisions
        assert u.get("/api/v1/cluster").json()["scaling"] == {}
    _page_shows_states_and_decisions(elastic)


def _page_shows_states_and_decisions(elastic):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{elastic.url}/#token={elastic.admin_token}")
            page.locator('#workers .node-state[data-state="ACTIVE"]').first.wait_for(timeout=30000)
            page.locator("#decisions tbody tr").nth(1).wait_for(timeout=30000)
            with elastic.client() as http:
                view = http.get("/api/v1/cluster").json()
            page.wait_for_timeout(1500)            # one more poll of the page, after that answer
            states = page.locator("#workers .node-state").all_inner_texts()
            assert sorted(states) == sorted(w["node_state"] for w in view["workers"])
            dn_states = page.locator("#datanodes .node-state").all_inner_texts()
            assert sorted(dn_states) == sorted(d["node_state"] for d in view["datanodes"])
            reasons = page.locator("#decisions td.reason").all_inner_texts()
            assert reasons == ["idle for 31.0s, holds no map output a running job needs",
                               "5 tasks waiting with no free slot for 2.0s"]          # newest first
            assert "between 1 and 4 workers" in page.locator("#scaling-policy").inner_text()
            os.makedirs(os.path.join(ROOT, "docs", "img"), exist_ok=True)
            page.screenshot(path=os.path.join(ROOT, "docs", "img", "status-elastic.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
