"""The service's handles on the cluster: one store client and one master client, shared by requests.

Both are made on first use and remade after a failure, so the service starts
(and answers its health probe) before the cluster does, and survives a node
restart.  The store ``Client`` is thread-safe; the master client is not, so
its calls are serialised here.  Routes get this object with ``Depends(backend)``.
Facts that every page view and every metrics scrape want (the job list, the
DataNode report, fsck) are cached for ``status_cache_s``.
"""
from __future__ import annotations

import logging
import threading
import time

from fastapi import Request

from mapred.errors import ClusterError, MapredError
from mapred.service.errors import ApiError
from mapred.service.settings import ServiceSettings

log = logging.getLogger("mapred.service")


class Backend:
    """Lazily connected store and master clients for one service process."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._store = None
        self._master = None
        self._store_lock = threading.Lock()
        self._master_lock = threading.RLock()
        self._cache: dict[str, tuple[float, object]] = {}
        self._cache_lock = threading.Lock()

    # -- the store -------------------------------------------------------------------------------
    def store(self):
        """The block store's ``Client``; 503 when the service was started without ``--namenode``."""
        if not self.settings.namenode:
            raise ApiError(503, "this service was started without --namenode: no block store",
                           "Unavailable", "RetriableException", {"Retry-After": "30"})
        with self._store_lock:
            if self._store is None:
                from mapred.storage.client import Client
                self._store = Client(self.settings.namenode, secret=self.settings.secret or None)
            return self._store

    @property
    def store_uri(self) -> str:
        """``mrfs://H:P`` of the store, the prefix of job paths that live in it."""
        return "mrfs://" + self.settings.namenode[len("tcp://"):] if self.settings.namenode else ""

    # -- the master ------------------------------------------------------------------------------
    def master_call(self, method: str, *args, **kwargs):
        """Call ``ClusterClient.<method>``; reconnects once, 503 if the master cannot be reached."""
        if not self.settings.master:
            raise ApiError(503, "this service was started without --master: no compute cluster",
                           "Unavailable", "RetriableException", {"Retry-After": "30"})
        with self._master_lock:
            for attempt in range(2):
                try:
                    if self._master is None:
                        from mapred.runtime.client import ClusterClient
                        self._master = ClusterClient(self.settings.master, timeout=5.0)
                    return getattr(self._master, method)(*args, **kwargs)
                except ClusterError as exc:
                    self._drop_master()
                    if attempt:
                        raise ApiError(503, f"the master at {self.settings.master} is unavailable: {exc}",
                                       "Unavailable", "RetriableException", {"Retry-After": "2"}) from None

    def _drop_master(self) -> None:
        if self._master is not None:
            try:
                self._master.close()
            except Exception:  # noqa: BLE001 - a broken client is being thrown away
                pass
            self._master = None

    # -- cached cluster facts --------------------------------------------------------------------
    def cached(self, name: str, fetch, ttl: float | None = None):
        """``fetch()``, reused for ``ttl`` seconds (default ``status_cache_s``)."""
        ttl = self.settings.status_cache_s if ttl is None else ttl
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(name)
            if hit is not None and now - hit[0] < ttl:
                return hit[1]
        value = fetch()
        with self._cache_lock:
            self._cache[name] = (time.monotonic(), value)
        return value

    def cluster_info(self) -> dict:
        return self.cached("cluster_info", lambda: self.master_call("cluster_info"))

    def close(self) -> None:
        with self._master_lock:
            self._drop_master()
        with self._store_lock:
            if self._store is not None:
                try:
                    self._store.close()
                except MapredError as exc:
                    log.warning("closing the store client: %s", exc)
                self._store = None


def backend(request: Request) -> Backend:
    """FastAPI dependency: the app's ``Backend``."""
    return request.app.state.backend
