"""An adaptive cluster: a burst of jobs grows it from 1 to 3 workers; idle, it shrinks back to 1."""
import json
import os
import threading

import pytest
from click.testing import CliRunner

from mapred.cli import main
from mapred.runtime.client import connect
from mapred.runtime.procs import wait_for
from mapred.testing import assert_matches_reference

from clusterkit import wordcount, write_text


def alive(client):
    return [w for w in client.workers(alive_only=False) if w.get("state") == "ALIVE"]


@pytest.mark.timeout(240)
def test_a_burst_grows_the_cluster_and_idleness_shrinks_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MAPRED_HEARTBEAT_INTERVAL", "0.25")
    d = str(tmp_path / "cluster")
    runner = CliRunner()
    r = runner.invoke(main, ["cluster", "up", "--dir", d, "--workers", "1", "--min-workers", "1",
                             "--max-workers", "3", "--slots", "1", "--scale-up-delay", "0.5",
                             "--idle-timeout", "4", "--dead-timeout", "3"])
    assert r.exit_code == 0 and "adaptive 1..3" in r.output, r.output
    try:
        master = json.load(open(os.path.join(d, "cluster.json")))["master"]
        client = connect(master)
        assert len(alive(client)) == 1
        peak = [1]
        stop = threading.Event()

        def watch():   # its own client: a client's socket belongs to one thread
            with connect(master) as mine:
                while not stop.is_set():
                    peak[0] = max(peak[0], len(alive(mine)))
                    stop.wait(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        jobs = []
        for i in range(3):
            path = write_text(tmp_path / f"in{i}.txt", 1500, seed=i)
            job = wordcount(reducers=2, map_sleep=1.0, split=4 * 1024)
            jobs.append((job, path, client.submit(job, path, str(tmp_path / f"out{i}"))))
        for job, path, handle in jobs:
            assert_matches_reference(job, [path], handle.wait(timeout=150))
        wait_for(lambda: peak[0] == 3 or None, 5, "the peak to be seen")
        wait_for(lambda: len(alive(client)) == 1, 60, "the cluster to shrink back to 1 worker")
        stop.set()
        watcher.join(5)
        states = [w["state"] for w in client.workers(alive_only=False)]
        assert states.count("DECOMMISSIONED") == 2 and states.count("LOST") == 0, states
        # the autoscaler drains a worker, then records the decision (to the master, then to
        # autoscale.json): a worker can read DECOMMISSIONED a moment before its decision is written
        wait_for(lambda: _retires_in(d) == 2 or None, 10, "both retire decisions to be recorded")
        status = _autoscale_status(d)
        actions = [x["action"] for x in status["decisions"]]
        assert "grow" in actions and actions.count("retire") == 2, status["decisions"]
        assert all(x["reason"] for x in status["decisions"])
        text = runner.invoke(main, ["cluster", "status", "--dir", d]).output
        assert "tasks waiting with no free slot" in text and "idle for" in text, text
        _service_shows_states_and_decisions(d)
        client.close()
    finally:
        out = runner.invoke(main, ["cluster", "down", "--dir", d])
        assert out.exit_code == 0, out.output


def _autoscale_status(d: str) -> dict:
    with open(os.path.join(d, "autoscale.json")) as f:
        return json.load(f)


def _retires_in(d: str) -> int:
    try:
        return [x["action"] for x in _autoscale_status(d)["decisions"]].count("retire")
    except (OSError, ValueError):      # being rewritten
        return 0


def _service_shows_states_and_decisions(d: str) -> None:
    """The service `cluster up` started: node states and each decision with its reason, in the
    API and on /metrics (the autoscaler reported them to the master)."""
    import httpx
    with open(os.path.join(d, "cluster.json")) as f:
        state = json.load(f)
    with open(os.path.join(d, "token")) as f:
        token = f.read().strip()
    with httpx.Client(base_url=state["service"], headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        view = http.get("/api/v1/cluster").json()
        states = sorted(w["node_state"] for w in view["workers"])
        assert states == ["ACTIVE", "DECOMMISSIONED", "DECOMMISSIONED"], view["workers"]
        decisions = view["scaling"]["decisions"]
        assert [x["action"] for x in decisions].count("retire") == 2
        assert any(x["action"] == "grow" and "tasks waiting with no free slot" in x["reason"] for x in decisions)
        assert all("idle for" in x["reason"] for x in decisions if x["action"] == "retire")
        assert view["scaling"]["policy"]["max_workers"] == 3
        metrics = http.get("/metrics").text
        assert 'mapred_scaling_decisions_total{action="retire"} 2.0' in metrics
        assert 'mapred_nodes{kind="worker",state="DECOMMISSIONED"} 2.0' in metrics
        assert 'mapred_nodes{kind="worker",state="ACTIVE"} 1.0' in metrics
        assert metrics.count("mapred_scaling_decision_timestamp_seconds{") == len(decisions)
        assert 'reason="idle for' in metrics
