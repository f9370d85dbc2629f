"""Prometheus metrics of model serving, per model and version (never per request or row).

Registered once per process on prometheus-client's default registry, which is
what the service's ``/metrics`` exposes.
"""
from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram

_lock = threading.Lock()
_metrics = None

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    def __init__(self) -> None:
        labels = ("model", "version")
        self.requests = Counter("mapred_model_requests_total", "Inference requests answered", labels)
        self.errors = Counter("mapred_model_errors_total", "Inference requests refused or failed",
                              (*labels, "code"))
        self.latency = Histogram("mapred_model_request_duration_seconds",
                                 "Inference request time, decode to encode", labels, buckets=LATENCY_BUCKETS)
        self.batch_rows = Histogram("mapred_model_batch_rows", "Rows per model call", labels,
                                    buckets=BATCH_BUCKETS)
        self.queue_wait = Histogram("mapred_model_queue_wait_seconds", "Time a request waited for its batch",
                                    labels, buckets=LATENCY_BUCKETS)
        self.loaded = Gauge("mapred_model_loaded_versions", "Versions loaded in this service", ("model",))
        self.swaps = Counter("mapred_model_alias_swaps_total", "Alias moves taken up by the service",
                             ("model", "alias"))
        self.load_failures = Counter("mapred_model_load_failures_total", "Versions that failed to load",
                                     ("model",))


def metrics() -> ServingMetrics:
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = ServingMetrics()
        return _metrics
