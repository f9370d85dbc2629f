"""Prometheus metrics of model serving, per model and version (never per request or row).

Registered on the registry the service's ``/metrics`` exposes (one per app:
tests make many apps in one process), or on a private one for an engine
used without the service.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = {"registry": self.registry}
        labels = ("model", "version")
        self.requests = Counter("mapred_model_requests_total", "Inference requests answered", labels, **r)
        self.errors = Counter("mapred_model_errors_total", "Inference requests refused or failed",
                              (*labels, "code"), **r)
        self.latency = Histogram("mapred_model_request_duration_seconds",
                                 "Inference request time, decode to encode", labels, buckets=LATENCY_BUCKETS, **r)
        self.batch_rows = Histogram("mapred_model_batch_rows", "Rows per model call", labels,
                                    buckets=BATCH_BUCKETS, **r)
        self.queue_wait = Histogram("mapred_model_queue_wait_seconds", "Time a request waited for its batch",
                                    labels, buckets=LATENCY_BUCKETS, **r)
        self.loaded = Gauge("mapred_model_loaded_versions", "Versions loaded in this service", ("model",), **r)
        self.swaps = Counter("mapred_model_alias_swaps_total", "Alias moves taken up by the service",
                             ("model", "alias"), **r)
        self.load_failures = Counter("mapred_model_load_failures_total", "Versions that failed to load",
                                     ("model",), **r)
