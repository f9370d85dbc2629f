"""``/metrics``: the service's own request metrics and the cluster's gauges, Prometheus text format.

Request counts and latency histograms are labelled by route *template*
(``/api/v1/jobs/{job_id}``, never a job id), method and status.  Refusals
(413, 503, 401, 408 ...) are counted by reason.  Cluster gauges are read from
the master and the NameNode when scraped (cached for ``status_cache_s``);
a cluster part that cannot be reached sets ``mapred_up{component=...}`` to 0
instead of failing the scrape.  Names follow Prometheus conventions: the
``mapred_`` prefix, base units (seconds, bytes), ``_total`` on counters.
"""
from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from mapred.security.principals import Principal
from mapred.service.auth import current_principal
from mapred.service.errors import ApiError, error_responses
from mapred.service.nodes import NODE_STATES, datanode_state, worker_state

log = logging.getLogger("mapred.service.metrics")
router = APIRouter(tags=["metrics"])
JOB_STATES = ("SUBMITTED", "MAPPING", "REDUCING", "COMMITTING", "SUCCEEDED", "FAILED", "KILLED")
SCALING_SHOWN = 20        # the last decisions exposed one series each (with their reasons)


class ServiceMetrics:
    """One registry per app (tests make many apps in one process)."""

    def __init__(self) -> None:
        disable_created_metrics()      # no *_created series: they double every counter for no reader
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("mapred_http_requests_total", "HTTP requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("mapred_http_request_duration_seconds", "time to answer an HTTP request",
                                 ["route", "method"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.refusals = Counter("mapred_http_refusals_total", "requests refused, by reason",
                                ["reason"], registry=self.registry)

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason).inc()

    def middleware(self, app):
        """ASGI middleware timing every request (outermost, so refusals are timed too)."""
        async def timed(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            status = [500]

            async def sending(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)
            started = time.perf_counter()
            try:
                await app(scope, receive, sending)
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                self.requests.labels(route, scope["method"], str(status[0])).inc()
                self.latency.labels(route, scope["method"]).observe(time.perf_counter() - started)
        return timed


class ClusterCollector:
    """Gauges read from the master and the NameNode at scrape time."""

    def __init__(self, backend) -> None:
        self.backend = backend

    def describe(self):
        return []

    def collect(self):
        up = GaugeMetricFamily("mapred_up", "whether the service could reach a cluster component",
                               labels=["component"])
        try:
            yield from self._compute(self.backend.cluster_info())
            up.add_metric(["master"], 1)
        except (ApiError, Exception) as exc:  # noqa: BLE001 - a scrape must not fail for a down node
            log.debug("metrics: master unavailable: %s", exc)
            up.add_metric(["master"], 0)
        try:
            yield from self._store(*self.backend.cached("store_facts", self._store_facts))
            up.add_metric(["namenode"], 1)
        except (ApiError, Exception) as exc:  # noqa: BLE001
            log.debug("metrics: namenode unavailable: %s", exc)
            up.add_metric(["namenode"], 0)
        try:
            yield from cleanup_metrics(self.backend.cached("cleanup_status",
                                                           lambda: self.backend.store().cleanup_status()))
        except (ApiError, Exception) as exc:  # noqa: BLE001
            log.debug("metrics: cleanup status unavailable: %s", exc)
        yield up

    def _store_facts(self):
        store = self.backend.store()
        return store.report(), store.fsck("/")

    @staticmethod
    def _compute(info: dict):
        jobs = GaugeMetricFamily("mapred_jobs", "jobs the master knows, by state", labels=["state"])
        counts = {s: 0 for s in JOB_STATES}
        for j in info["jobs"]:
            counts[j["state"]] = counts.get(j["state"], 0) + 1
        for state, n in sorted(counts.items()):
            jobs.add_metric([state], n)
        workers = GaugeMetricFamily("mapred_workers", "workers the master knows, by liveness", labels=["state"])
        live = [w for w in info["workers"] if w.get("alive")]
        workers.add_metric(["live"], len(live))
        workers.add_metric(["dead"], len(info["workers"]) - len(live))
        slots = GaugeMetricFamily("mapred_worker_slots", "task slots of live workers")
        slots.add_metric([], sum(int(w.get("slots", 0)) for w in live))
        running = sum(int(w.get("running", 0)) for w in live)
        tasks = GaugeMetricFamily("mapred_tasks_running", "task attempts running on live workers")
        tasks.add_metric([], running)
        return [jobs, workers, slots, tasks, *_node_states("worker", info["workers"], "worker_id", worker_state),
                *scaling_metrics(info.get("scaling", {}))]

    @staticmethod
    def _store(nodes: list, fsck: dict):
        dns = GaugeMetricFamily("mapred_datanodes", "DataNodes the NameNode knows, by state", labels=["state"])
        states: dict[str, int] = {"live": 0, "dead": 0}
        for n in nodes:
            key = str(n.get("state", "")).lower()
            states[key] = states.get(key, 0) + 1
        for state, n in sorted(states.items()):
            dns.add_metric([state], n)
        live = [n for n in nodes if n.get("state") == "LIVE"]
        cap = GaugeMetricFamily("mapred_store_capacity_bytes", "disk capacity of live DataNodes")
        cap.add_metric([], sum(int(n.get("capacity", 0)) for n in live))
        used = GaugeMetricFamily("mapred_store_used_bytes", "bytes of block files on live DataNodes")
        used.add_metric([], sum(int(n.get("used", 0)) for n in live))
        rem = GaugeMetricFamily("mapred_store_remaining_bytes", "free bytes on live DataNodes")
        rem.add_metric([], sum(int(n.get("remaining", 0)) for n in live))
        blocks = GaugeMetricFamily("mapred_store_blocks", "blocks in the namespace, by health", labels=["health"])
        for key in ("under_replicated", "corrupt", "missing", "over_replicated"):
            blocks.add_metric([key], int(fsck.get(key, 0)))
        blocks.add_metric(["total"], int(fsck.get("blocks", 0)))
        files = GaugeMetricFamily("mapred_store_files", "files in the namespace")
        files.add_metric([], int(fsck.get("files", 0)))
        safe = GaugeMetricFamily("mapred_store_safemode", "1 while the NameNode is read-only")
        safe.add_metric([], 1 if fsck.get("safemode") else 0)
        return [dns, cap, used, rem, blocks, files, safe, *_node_states("datanode", nodes, "dnid", datanode_state)]


def _node_states(kind: str, nodes: list, key: str, state_of) -> list:
    """Counts by the shared node states, and one series per node naming its state."""
    counts = GaugeMetricFamily("mapred_nodes", "nodes by kind and state (ACTIVE, DECOMMISSIONING, "
                               "DECOMMISSIONED, LOST)", labels=["kind", "state"])
    each = GaugeMetricFamily("mapred_node_state", "1 for each node, labelled with its state",
                             labels=["kind", "node", "state"])
    tally = dict.fromkeys(NODE_STATES, 0)
    for n in nodes:
        state = state_of(n)
        tally[state] = tally.get(state, 0) + 1
        each.add_metric([kind, str(n.get(key, "")), state], 1)
    for state, count in tally.items():
        counts.add_metric([kind, state], count)
    return [counts, each]


def scaling_metrics(scaling: dict) -> list:
    """The autoscaler's decisions: totals by action, and the last ones with their reasons."""
    if not scaling:
        return []
    totals = CounterMetricFamily("mapred_scaling_decisions", "autoscaler decisions since the master started",
                                 labels=["action"])
    for action, n in sorted(scaling.get("totals", {}).items()):
        totals.add_metric([action], n)
    last = GaugeMetricFamily("mapred_scaling_decision_timestamp_seconds",
                             f"when each of the last {SCALING_SHOWN} decisions was made, with its reason",
                             labels=["seq", "action", "reason", "workers_before", "count", "worker"])
    for d in scaling.get("decisions", [])[-SCALING_SHOWN:]:
        last.add_metric([str(d.get("seq", "")), d.get("action", ""), d.get("reason", ""),
                         str(d.get("workers_before", "")), str(d.get("count", "")), d.get("worker", "")],
                        float(d.get("time", 0.0)))
    return [totals, last]


_CLEANUP_BY_RULE = (("bytes_freed", "mapred_cleanup_freed_bytes", "bytes a rule removed (to a trash or for good)"),
                    ("files_freed", "mapred_cleanup_freed_files", "files a rule removed"),
                    ("deletions", "mapred_cleanup_deletions", "paths a rule deleted"),
                    ("aborts", "mapred_cleanup_aborted_uploads", "files left open that a rule abandoned"),
                    ("bytes_to_trash", "mapred_cleanup_trashed_bytes", "of the freed bytes, those sent to a trash"))
_CLEANUP_TOTALS = (("runs", "mapred_cleanup_runs", "rule runs that changed the store"),
                   ("dry_runs", "mapred_cleanup_dry_runs", "dry runs"),
                   ("pins_honoured", "mapred_cleanup_pins_honoured", "deletions a pin, hold or open file prevented"),
                   ("capped", "mapred_cleanup_capped", "actions left for a later run by max_deletions_per_run"),
                   ("failures", "mapred_cleanup_failures", "actions that failed"),
                   ("skipped", "mapred_cleanup_skipped", "actions dropped: the path changed since the snapshot"),
                   ("trash_checkpoints", "mapred_trash_checkpoints", "trash checkpoints made"),
                   ("trash_expunged", "mapred_trash_expunged", "trash checkpoints deleted"))


def cleanup_metrics(status: dict) -> list:
    """The NameNode's cleanup metrics (``Client.cleanup_status``) as Prometheus families."""
    m = status.get("metrics", {})
    out = []
    rules = sorted(set(status.get("rule_ids", [])) | set(m.get("by_rule", {})))
    for key, name, doc in _CLEANUP_BY_RULE:
        fam = CounterMetricFamily(name, doc, labels=["rule"])
        for rule in rules:
            fam.add_metric([rule], int(m.get("by_rule", {}).get(rule, {}).get(key, 0)))
        out.append(fam)
    for key, name, doc in _CLEANUP_TOTALS:
        fam = CounterMetricFamily(name, doc)
        fam.add_metric([], int(m.get(key, 0)))
        out.append(fam)
    last = GaugeMetricFamily("mapred_cleanup_last_run_timestamp_seconds", "when the last rule run began (0: never)")
    last.add_metric([], float(m.get("last_run_time", 0.0)))
    freed = GaugeMetricFamily("mapred_cleanup_last_run_freed_bytes", "bytes the last rule run removed")
    freed.add_metric([], int(m.get("last_run_freed_bytes", 0)))
    config = GaugeMetricFamily("mapred_cleanup_config", "the cleanup configuration now", labels=["what"])
    for what in ("rules", "pins", "holds"):
        config.add_metric([what], int(status.get(what, 0)))
    return [*out, last, freed, config]


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "metrics in the Prometheus text format"},
                       **error_responses(401, 403)})
def metrics(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """The service's request metrics and the cluster's gauges (any valid token may scrape)."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def setup(app) -> None:
    app.state.metrics.registry.register(ClusterCollector(app.state.backend))
