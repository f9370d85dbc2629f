"""The serving engine: loaded model versions, alias targets, swaps without downtime. No HTTP here.

- A request names a model and optionally a version: a number, or an alias
  (no version means the ``champion`` alias).  It is resolved once, to one
  ``LoadedVersion``, which answers it whole and whose number the response
  carries, so no response mixes versions; micro-batches are per version.
- Moving an alias: the engine notices (a poll of the registry, or ``refresh``
  right after a move through the service), loads the new version beside the
  old one, switches the alias to it when it is ready, and lets the old one
  drain (requests already holding it finish on it; it is unloaded when the
  last one does).  A version that fails to load leaves the alias where it
  was, and the error is kept and shown (``status()``, the ready route).
- A version whose files are corrupt is marked unloadable with the reason;
  other versions keep serving.
- The served set (each model's tracked aliases, and the versions loaded by
  number) is kept in the registry (``NAME/served.msgpack``, written as it
  changes); a service that starts loads it again before it says it is ready
  (``restore``), so a restart keeps what was being served.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time

from mapred.errors import MapredError, ModelError

from ..persist import load as load_model
from ..registry import DEFAULT_ALIAS, NotFound, Registry
from .batching import Batcher
from .errors import InferError
from .metrics import ServingMetrics
from .predictors import predictor_for
from .tensors import encode_response, parse_request

log = logging.getLogger("mapred.serving")


class LoadedVersion:
    """One model version in memory, with its predictor, its batcher and its in-flight count."""

    def __init__(self, name: str, version: int, model, options: dict, metrics: ServingMetrics) -> None:
        self.name, self.version, self.model = name, version, model
        self.predictor = predictor_for(model)
        self.model_class = type(model).__name__
        self.options = options
        self.loaded_at = time.time()
        self.inflight = 0
        self.draining = False
        self.batcher: Batcher | None = None
        self.labels = (name, str(version))
        self.metrics = metrics

    @property
    def batching(self) -> bool:
        return int(self.options.get("max_batch_size", 0) or 0) > 1

    def get_batcher(self) -> Batcher:
        if self.batcher is None:
            m = self.metrics

            def observe(rows, waits, labels=self.labels):
                m.batch_rows.labels(*labels).observe(rows)
                for w in waits:
                    m.queue_wait.labels(*labels).observe(w)

            self.batcher = Batcher(self.predictor.run, max_batch_size=self.options["max_batch_size"],
                                   max_wait_s=float(self.options.get("max_batch_wait_ms", 1.0)) / 1000.0,
                                   max_queue=int(self.options.get("max_queue", 0) or 256), observe=observe)
        return self.batcher

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "class": self.model_class,
                "loaded_at": self.loaded_at, "inflight": self.inflight, "draining": self.draining,
                "batching": {k: self.options.get(k) for k in ("max_batch_size", "max_batch_wait_ms", "max_queue")}
                if self.batching else None}


def parse_version(version) -> int | str | None:
    """A route's version segment: None, a number, or an alias name."""
    if version is None or version == "":
        return None
    if isinstance(version, int) or str(version).isdigit():
        return int(version)
    return str(version)


class ModelServer:
    """Serves the models of one registry; thread-safe for the poller, async for requests."""

    def __init__(self, registry: Registry | str | None = None, *, poll_interval: float = 1.0,
                 options: dict | None = None, metrics_registry=None) -> None:
        self.registry = registry if isinstance(registry, Registry) else Registry(registry)
        self.poll_interval = poll_interval
        self.options = options or {}             # {model name: serving options} over the registry's
        self.metrics = ServingMetrics(metrics_registry)
        self._versions: dict[tuple, LoadedVersion] = {}
        self._failed: dict[tuple, str] = {}
        self._aliases: dict[tuple, LoadedVersion] = {}
        self._alias_errors: dict[tuple, str] = {}
        self._lock = threading.RLock()
        self._load_locks: dict[tuple, threading.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dirty: set[str] = set()             # models whose served set changed since it was saved
        self._saved: dict[str, tuple] = {}
        self.restored = threading.Event()         # set once the served set of the last run is loaded again
        self._restoring = False

    # -- lifecycle
    def start(self, restore: bool = True) -> ModelServer:
        """Load the saved served set (in the background; ``restored`` says when) and start the alias poller."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, args=(restore,), name="model-alias-poller",
                                            daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _poll(self, restore: bool) -> None:
        if restore:
            try:
                self.restore()
            except Exception:   # a store hiccup at start: serve on, loading on demand
                log.exception("restoring the served set failed")
        self.restored.set()
        if self.poll_interval <= 0:
            return
        while not self._stop.wait(self.poll_interval):
            try:
                self.refresh()
            except Exception:   # a store hiccup must not kill the poller
                log.exception("alias refresh failed")

    # -- the served set, kept in the registry
    def restore(self) -> dict:
        """Load what the registry says was served (aliases, versions by number); errors are kept, not raised."""
        self._restoring = True     # no saving of a half-restored set
        try:
            self._restore_all()
        finally:
            self._restoring = False
        with self._lock:
            self._dirty.update(self._saved)
        self.save_served()         # what could not be loaded drops out of the set
        self.restored.set()
        return self.status()

    def _restore_all(self) -> None:
        for name in self.registry.names():
            served = self.registry.served(name)
            self._saved[name] = (tuple(sorted(served["aliases"])), tuple(sorted(served["versions"])))
            for key in [*served["aliases"], *served["versions"]]:
                try:
                    self.get(name, key)
                except InferError as exc:
                    if isinstance(key, str):
                        self._alias_errors[(name, key)] = exc.message
                    log.warning("could not restore %s %s: %s", name, key, exc.message)

    def _served_set(self, name: str) -> tuple:
        with self._lock:
            aliases = {a for (n, a) in self._aliases if n == name}
            targets = {lv.version for (n, _), lv in self._aliases.items() if n == name}
            versions = {v for (n, v), lv in self._versions.items()
                        if n == name and not lv.draining and v not in targets}
        return tuple(sorted(aliases)), tuple(sorted(versions))

    def save_served(self) -> None:
        """Write the served set of every model whose set changed (never from the event loop: it does I/O)."""
        if self._restoring:
            return
        with self._lock:
            names, self._dirty = self._dirty, set()
        for name in names:
            current = self._served_set(name)
            if self._saved.get(name) == current:
                continue
            try:
                self.registry.set_served(name, *current)
                self._saved[name] = current
            except (MapredError, OSError) as exc:   # retried at the next change or poll
                self._dirty.add(name)
                log.warning("could not save the served set of %s: %s", name, exc)

    # -- resolving
    def lookup(self, name: str, version) -> LoadedVersion | None:
        """The loaded version a request names, if it is in memory (no I/O)."""
        v = parse_version(version)
        if v is None or isinstance(v, str):
            return self._aliases.get((name, v or DEFAULT_ALIAS))
        return self._versions.get((name, v))

    def get(self, name: str, version) -> LoadedVersion:
        """The loaded version a request names, loading it (or an alias's target) if need be. Blocking."""
        hit = self.lookup(name, version)
        if hit is not None:
            return hit
        v = parse_version(version)
        if v is None or isinstance(v, str):
            alias = v or DEFAULT_ALIAS
            st = self._registry_call(self.registry.alias, name, alias)
            if st is None or st.version is None:
                self._registry_call(self.registry.versions, name)   # 404 for an unknown name first
                raise InferError(404, f"model {name!r} has no alias {alias!r}"
                                 + ("; serve a version (/versions/N) or set the champion alias"
                                    if alias == DEFAULT_ALIAS else ""))
            lv = self._load(name, st.version)
            with self._lock:
                self._aliases.setdefault((name, alias), lv)
                self._dirty.add(name)
                lv = self._aliases[(name, alias)]
            self.save_served()
            return lv
        lv = self._load(name, v)
        self.save_served()
        return lv

    def _registry_call(self, fn, *args):
        try:
            return fn(*args)
        except NotFound as exc:
            raise InferError(404, str(exc)) from None
        except ModelError as exc:
            raise InferError(400, str(exc)) from None

    def _load(self, name: str, version: int) -> LoadedVersion:
        key = (name, version)
        with self._lock:
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:   # one load per version at a time; the others wait for it
            if key in self._versions:
                return self._versions[key]
            if key in self._failed:
                raise InferError(503, f"model {name!r} version {version} cannot be loaded: {self._failed[key]}")
            mv = self._registry_call(self.registry.get, name, version)
            options = {**self.registry.serving_options(name), **self.options.get(name, {})}
            try:
                lv = LoadedVersion(name, version, load_model(mv.uri), options, self.metrics)
            except InferError as exc:
                self._mark_failed(key, exc.message)
                raise InferError(503, f"model {name!r} version {version} cannot be loaded: {exc.message}")
            except (MapredError, OSError, ValueError, KeyError, TypeError) as exc:
                self._mark_failed(key, f"{type(exc).__name__}: {exc}")
                raise InferError(503, f"model {name!r} version {version} cannot be loaded: {exc}") from None
            with self._lock:
                self._versions[key] = lv
                self._dirty.add(name)
                self._update_loaded_gauge(name)
            log.info("loaded model %s version %s (%s)", name, version, lv.model_class)
            return lv

    def _mark_failed(self, key: tuple, reason: str) -> None:
        self._failed[key] = reason
        self.metrics.load_failures.labels(key[0]).inc()
        log.warning("model %s version %s is unloadable: %s", key[0], key[1], reason)

    def _update_loaded_gauge(self, name: str) -> None:
        self.metrics.loaded.labels(name).set(sum(1 for (n, _) in self._versions if n == name))

    # -- swaps
    def refresh(self, name: str | None = None) -> dict:
        """Take up alias moves: load each new target beside the old, switch, drain the old."""
        with self._lock:
            tracked = [k for k in set(self._aliases) | set(self._alias_errors) if name in (None, k[0])]
        if name is not None and (name, DEFAULT_ALIAS) not in tracked:
            tracked.append((name, DEFAULT_ALIAS))
        for key in tracked:
            self._refresh_one(*key)
        self._prune_failures(name)
        self.save_served()
        return self.status(name)

    def _prune_failures(self, name: str | None) -> None:
        """Forget load failures of versions since removed from the registry."""
        for n in {n for (n, _) in list(self._failed) if name in (None, n)}:
            try:
                kept = set(self.registry.version_numbers(n))
            except ModelError:
                continue
            for key in [k for k in list(self._failed) if k[0] == n and k[1] not in kept]:
                self._failed.pop(key, None)

    def _refresh_one(self, name: str, alias: str) -> None:
        try:
            st = self.registry.alias(name, alias)
        except ModelError:
            return
        target = st.version if st else None
        cur = self._aliases.get((name, alias))
        if cur is not None and cur.version == target:
            self._alias_errors.pop((name, alias), None)
            return
        if target is None:
            with self._lock:
                self._aliases.pop((name, alias), None)
                self._dirty.add(name)
            if cur is not None:
                self._retire(cur)
            return
        try:
            lv = self._load(name, target)
        except InferError as exc:
            self._alias_errors[(name, alias)] = exc.message
            return
        with self._lock:
            self._aliases[(name, alias)] = lv
            self._alias_errors.pop((name, alias), None)
            self._dirty.add(name)
        self.metrics.swaps.labels(name, alias).inc()
        log.info("alias %s@%s now serves version %s (was %s)", name, alias, target,
                 cur.version if cur else None)
        if cur is not None:
            self._retire(cur)

    def _retire(self, lv: LoadedVersion) -> None:
        """Drain ``lv`` if no alias serves it any more: unloaded once its last request is answered."""
        with self._lock:
            if any(a is lv for a in self._aliases.values()):
                return
            lv.draining = True
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._finish_drain, lv)
        else:
            self._finish_drain(lv)

    def _finish_drain(self, lv: LoadedVersion) -> None:
        if not lv.draining or lv.inflight > 0 or (lv.batcher is not None and lv.batcher.queue):
            return
        with self._lock:
            if any(a is lv for a in self._aliases.values()):
                lv.draining = False
                return
            if self._versions.get((lv.name, lv.version)) is lv:
                del self._versions[(lv.name, lv.version)]
            self._dirty.add(lv.name)      # saved by the next refresh (this may run on the event loop)
            self._update_loaded_gauge(lv.name)
        if lv.batcher is not None:
            lv.batcher.close()

    def forget_failure(self, name: str, version: int) -> None:
        """Allow another load attempt of a version marked unloadable."""
        self._failed.pop((name, int(version)), None)

    # -- requests
    async def resolve(self, name: str, version) -> LoadedVersion:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        lv = self.lookup(name, version)
        if lv is None:
            lv = await asyncio.to_thread(self.get, name, version)
        return lv

    async def infer(self, name: str, version, body: bytes, header_length: str | None = None,
                    explain: bool = False) -> tuple[bytes, int | None, LoadedVersion]:
        """Answer one OIP infer request: (response body, binary header length or None, the version)."""
        started = time.perf_counter()
        lv = await self.resolve(name, version)
        m = self.metrics
        lv.inflight += 1
        try:
            req = parse_request(body, header_length)
            params = dict(req.parameters)
            if explain:
                params["explain"] = True
            if params.get("explain") and not lv.predictor.explainable:
                raise InferError(400, f"a {lv.model_class} cannot explain its predictions "
                                      "(explain is for linear models)")
            names = lv.predictor.output_names(params)
            unknown = [o["name"] for o in req.outputs if o["name"] not in names]
            if unknown:
                raise InferError(400, f"unknown output(s) {unknown}; the model gives {names}")
            X = lv.predictor.check(req.inputs)
            key = lv.predictor.batch_key(params)
            if lv.batching and not params.get("explain"):
                out = await lv.get_batcher().submit(X, params, key)
            else:
                out = lv.predictor.run(X, params)
                m.batch_rows.labels(*lv.labels).observe(len(X))
            binary = bool(params.get("binary_data_output", False))
            payload, head_len = encode_response(name, str(lv.version), req.id, out, req.outputs, binary)
        except InferError as exc:
            m.errors.labels(*lv.labels, str(exc.status)).inc()
            raise
        except ModelError as exc:   # the model's own check (width, a label), after ours
            m.errors.labels(*lv.labels, "400").inc()
            raise InferError(400, str(exc)) from None
        finally:
            lv.inflight -= 1
            if lv.draining and lv.inflight == 0:
                self._finish_drain(lv)
        m.requests.labels(*lv.labels).inc()
        m.latency.labels(*lv.labels).observe(time.perf_counter() - started)
        return payload, head_len, lv

    # -- metadata
    async def metadata(self, name: str, version=None) -> dict:
        lv = await self.resolve(name, version)
        versions = await asyncio.to_thread(self._registry_call, self.registry.version_numbers, name)
        return {"name": name, "versions": [str(v) for v in versions], "platform": "mapred",
                "version": str(lv.version), "model_class": lv.model_class, **lv.predictor.metadata()}

    def status(self, name: str | None = None) -> dict:
        """What is loaded, what each alias serves, and every load or swap error."""
        with self._lock:
            return {
                "loaded": [lv.describe() for (n, _), lv in sorted(self._versions.items()) if name in (None, n)],
                "aliases": {f"{n}@{a}": lv.version for (n, a), lv in sorted(self._aliases.items())
                            if name in (None, n)},
                "alias_errors": {f"{n}@{a}": e for (n, a), e in sorted(self._alias_errors.items())
                                 if name in (None, n)},
                "unloadable": {f"{n}/{v}": e for (n, v), e in sorted(self._failed.items()) if name in (None, n)},
            }
