"""The model registry: immutable numbered versions per name, and movable aliases that remember.

Layout under the registry root (a local directory or ``mrfs://host:port/path``,
so a registry in the block store is replicated and survives restarts)::

    NAME/versions/N/model/            the saved model (models.persist format)
    NAME/versions/N/version.msgpack   class, params, metrics, lineage, who and when (written last)
    NAME/versions/N/evaluations/      one record per served evaluation (added later, never edited)
    NAME/aliases/ALIAS/SEQ.msgpack    the alias log: {"version", "previous", "by", "at"}
    NAME/serving.msgpack              serving options (micro-batching), not part of any version
    NAME/served.msgpack               what a service had loaded (aliases, versions), restored on restart
    NAME/runs/RUN.msgpack             a served evaluation run: its state, and once done its metrics

Why these shapes:

- A version number is taken by creating ``versions/N`` with an exclusive
  mkdir, so two registrants never share one (a removed version leaves its
  directory with a tombstone, so no number is reused); a version is visible only once
  its ``version.msgpack`` exists (written after the model), so a registrant
  that dies half-way leaves a hole, never a broken version.
- An alias is a log of entries created exclusively with increasing sequence
  numbers: moving it is one create (a compare-and-swap against the entry the
  mover read), so concurrent moves never lose one, readers see the old or the
  new target and nothing between, and ``previous`` is the entry before —
  a rollback is one call.
- Registering never touches an alias.  A version that an alias points at
  cannot be removed (the removal hides the record first, then checks the
  aliases, so a move racing it either sees the version gone or blocks the removal).

References: ``models:/NAME/3`` (a version), ``models:/NAME@champion`` (an alias),
``models:/NAME/latest`` (the highest version), ``models:/NAME`` (its champion);
``models.load`` accepts them wherever it accepts a path.
"""
from __future__ import annotations

import getpass
import hashlib
import inspect
import os
import re
import time
from dataclasses import asdict, dataclass, field

import msgpack

from mapred.errors import ModelError

from ._store import AlreadyExists, open_store
from .persist import _plain, add_resolver
from .persist import load as load_path

SCHEME = "models:/"
DEFAULT_ALIAS = "champion"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_REF = re.compile(r"^(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))?$")
_default_root: str | None = None


class NotFound(ModelError):
    """An unknown model name, version or alias (the service answers 404)."""


class Conflict(ModelError):
    """A rule of the registry refuses the change (removing an aliased version; the service answers 409)."""


@dataclass
class ModelVersion:
    """One immutable registered version, as read back from the registry."""

    name: str
    version: int
    model_class: str
    params: dict
    metrics: dict
    lineage: dict
    registered_by: str
    registered_at: float
    description: str = ""
    uri: str = ""          # where the saved model directory lives
    evaluations: list = field(default_factory=list)
    aliases: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """The version as a plain dict (for JSON and the service)."""
        return asdict(self)


@dataclass
class Alias:
    """An alias's current target, the one before it, and the move that set it."""

    name: str
    alias: str
    version: int | None
    previous: int | None
    moved_by: str
    moved_at: float
    seq: int

    def to_dict(self) -> dict:
        """The alias as a plain dict (for JSON and the service)."""
        return asdict(self)


def set_registry(root: str | None) -> None:
    """The registry that ``models:/`` references and ``models.register`` use when none is named."""
    global _default_root
    _default_root = root


def default_root() -> str:
    """``set_registry``'s root, else ``$MAPRED_REGISTRY``, else ``mrfs://$MAPRED_NAMENODE/models``, else ~/.mapred/models."""
    if _default_root:
        return _default_root
    if os.environ.get("MAPRED_REGISTRY"):
        return os.environ["MAPRED_REGISTRY"]
    namenode = os.environ.get("MAPRED_NAMENODE", "")
    if namenode:
        return "mrfs://" + namenode.removeprefix("tcp://").rstrip("/") + "/models"
    return os.path.expanduser("~/.mapred/models")


def check_name(name: str) -> str:
    """``name`` if it is a valid model name, else a ``ModelError`` saying what is allowed."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelError(f"model name {name!r} must be 1-128 letters, digits, '_', '.' or '-', "
                         "starting with a letter or digit")
    return name


def _check_run(run_id: str) -> str:
    if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{6,32}", run_id):
        raise NotFound(f"{run_id!r} is not an evaluation run id")
    return run_id


def check_alias(alias: str) -> str:
    """``alias`` if it is a valid alias (``latest`` is reserved), else a ``ModelError``."""
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias == "latest":
        raise ModelError(f"alias {alias!r} must start with a letter and hold only letters, digits, "
                         "'_', '.' or '-' (and cannot be 'latest')")
    return alias


def parse_ref(ref: str) -> tuple[str, int | str | None, str | None]:
    """``models:/NAME[/V|/latest|@ALIAS]`` (the scheme optional) → (name, version, alias)."""
    body = ref.removeprefix(SCHEME)
    m = _REF.match(body.strip("/"))
    if not m:
        raise ModelError(f"{ref!r} is not a model reference (models:/NAME, models:/NAME/3, models:/NAME@ALIAS)")
    name, version, alias = check_name(m["name"]), m["version"], m["alias"]
    if version is not None and version != "latest":
        if not version.isdigit():
            raise ModelError(f"version {version!r} in {ref!r} is not a number or 'latest'")
        version = int(version)
    if alias is not None:
        check_alias(alias)
    return name, version, alias


def _pack(obj) -> bytes:
    return msgpack.packb(_plain(obj), use_bin_type=True)


def _unpack(raw: bytes, what: str) -> dict:
    try:
        value = msgpack.unpackb(raw, raw=False)
    except Exception as exc:
        raise ModelError(f"registry record {what} is corrupt: {exc}") from None
    if not isinstance(value, dict):
        raise ModelError(f"registry record {what} is not a map")
    return value


def current_user() -> str:
    """The user a registration is recorded as (``MAPRED_USER``, else the login name)."""
    try:
        return os.environ.get("MAPRED_USER") or getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


class Registry:
    """A registry rooted at a local directory or an ``mrfs://`` path."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root or default_root()
        self.store = open_store(self.root)

    def __repr__(self) -> str:
        return f"Registry({self.root!r})"

    # -- paths
    def _dir(self, name: str, *more: str) -> str:
        return self.store.join(check_name(name), *more)

    def _vdir(self, name: str, version: int, *more: str) -> str:
        return self._dir(name, "versions", str(int(version)), *more)

    # -- registering
    def register(self, model, name: str, *, metrics: dict | None = None, inputs=(), seed=None,
                 code=None, description: str = "", user: str | None = None) -> ModelVersion:
        """Store ``model`` (a fitted model or a saved model path) as the next version of ``name``.

        ``metrics``: validation/test evaluations to keep with it (the training
        history is taken from the model); ``inputs``: the paths (or datasets)
        it was trained on, recorded with sizes and checksums; ``seed``; ``code``:
        the training job or function, hashed (default: the model class's module).
        Aliases are left where they are.
        """
        check_name(name)
        if isinstance(model, str):
            model = load_path(model)
        if not getattr(model, "fitted_", False):
            raise ModelError(f"{type(model).__name__} is not fitted; fit it before registering")
        version = self._take_number(name)
        uri = self._vdir(name, version, "model")
        model.save(uri)
        from .persist import read_model
        meta, _ = read_model(uri)   # what a loader will see, checked before the version becomes visible
        record = {
            "name": name, "version": version, "model_class": meta["class"], "params": meta["params"],
            "metrics": {"history": list(getattr(model, "history_", []) or []), **(metrics or {})},
            "lineage": lineage(model, inputs, seed, code),
            "registered_by": user or current_user(), "registered_at": time.time(),
            "description": description,
        }
        self.store.write(self._vdir(name, version, "version.msgpack"), _pack(record))
        return self.get(name, version)

    def _take_number(self, name: str) -> int:
        vdir = self._dir(name, "versions")
        self.store.makedirs(vdir)
        taken = [int(n) for n in self.store.listdir(vdir) if n.isdigit()]
        n = max(taken, default=0) + 1
        while True:
            try:
                self.store.mkdir_new(self._vdir(name, n))
                return n
            except AlreadyExists:   # another registrant took it: the next one
                n += 1

    # -- reading
    def names(self) -> list[str]:
        """Every registered model's name."""
        return [n for n in self.store.listdir(self.store.root) if _NAME.match(n)
                and self.store.exists(self._dir(n, "versions"))]

    def version_numbers(self, name: str) -> list[int]:
        """The complete versions of ``name``, oldest first (half-written ones are not listed)."""
        nums = [int(n) for n in self.store.listdir(self._dir(name, "versions")) if n.isdigit()]
        return sorted(v for v in nums if self.store.exists(self._vdir(name, v, "version.msgpack")))

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name`` with its aliases; ``NotFound`` if no such model."""
        nums = self.version_numbers(name)
        if not nums and not self.store.exists(self._dir(name, "versions")):
            raise NotFound(f"no model named {name!r} in {self.root}")
        aliases = self.aliases(name)
        return [self._read_version(name, v, aliases) for v in nums]

    def get(self, name: str, version: int) -> ModelVersion:
        """Version ``version`` of ``name``."""
        return self._read_version(name, int(version), self.aliases(name))

    def _read_version(self, name: str, version: int, aliases: dict) -> ModelVersion:
        path = self._vdir(name, version, "version.msgpack")
        try:
            raw = self.store.read(path)
        except FileNotFoundError:
            if not self.store.exists(self._dir(name, "versions")):
                raise NotFound(f"no model named {name!r} in {self.root}") from None
            raise NotFound(f"model {name!r} has no version {version}") from None
        rec = _unpack(raw, path)
        known = {k: rec[k] for k in ModelVersion.__dataclass_fields__ if k in rec}
        mv = ModelVersion(**known, uri=self._vdir(name, version, "model"))
        mv.evaluations = self.evaluations(name, version)
        mv.aliases = sorted(a for a, st in aliases.items() if st.version == version)
        return mv

    def resolve(self, ref: str) -> ModelVersion:
        """The version a reference names (``NAME``, ``NAME/3``, ``NAME/latest``, ``NAME@ALIAS``)."""
        name, version, alias = parse_ref(ref)
        if version == "latest":
            nums = self.version_numbers(name)
            if not nums:
                raise NotFound(f"no model named {name!r} in {self.root}")
            return self.get(name, nums[-1])
        if version is not None:
            return self.get(name, version)
        alias = alias or DEFAULT_ALIAS
        st = self.alias(name, alias)
        if st is None or st.version is None:
            self.versions(name)   # NotFound for an unknown name
            raise NotFound(f"model {name!r} has no alias {alias!r}")
        return self.get(name, st.version)

    def load(self, ref: str):
        """The model a reference names, loaded (class from its metadata, arrays checked)."""
        return load_path(self.resolve(ref).uri)

    # -- aliases
    def _log(self, name: str, alias: str) -> list[int]:
        return sorted(int(n.split(".")[0]) for n in self.store.listdir(self._dir(name, "aliases", alias))
                      if n.endswith(".msgpack") and n.split(".")[0].isdigit())

    def alias(self, name: str, alias: str) -> Alias | None:
        """Where ``alias`` of ``name`` points now, or None."""
        check_alias(alias)
        seqs = self._log(name, alias)
        return self._read_alias(name, alias, seqs[-1]) if seqs else None

    def _read_alias(self, name: str, alias: str, seq: int) -> Alias:
        path = self._dir(name, "aliases", alias, f"{seq:010d}.msgpack")
        rec = _unpack(self.store.read(path), path)
        return Alias(name, alias, rec.get("version"), rec.get("previous"), rec.get("by", ""),
                     rec.get("at", 0.0), seq)

    def aliases(self, name: str) -> dict[str, Alias]:
        """Every alias of ``name`` and where it points."""
        out = {}
        for a in self.store.listdir(self._dir(name, "aliases")):
            if _ALIAS.match(a):
                st = self.alias(name, a)
                if st is not None and st.version is not None:
                    out[a] = st
        return out

    def set_alias(self, name: str, alias: str, version: int | None, *, user: str | None = None) -> Alias:
        """Point ``alias`` at ``version`` (None removes it) in one atomic step; the old target becomes ``previous``."""
        check_alias(alias)
        if version is not None:
            self.get(name, version)   # NotFound for an unknown version
        adir = self._dir(name, "aliases", alias)
        self.store.makedirs(adir)
        while True:
            cur = self.alias(name, alias)
            seq = (cur.seq if cur else 0) + 1
            rec = {"version": version, "previous": cur.version if cur else None,
                   "by": user or current_user(), "at": time.time()}
            try:
                self.store.create_new(f"{adir}/{seq:010d}.msgpack", _pack(rec))
                break
            except AlreadyExists:    # another move landed first: re-read and move after it
                continue
        if version is not None and not self.store.exists(self._vdir(name, version, "version.msgpack")):
            # the version was removed while we moved: undo, so no alias dangles
            self.set_alias(name, alias, rec["previous"], user=user)
            raise NotFound(f"model {name!r} version {version} was removed while the alias moved")
        from .registry_pins import sync_quietly
        sync_quietly(self, name)     # the store's cleanup rules must never take an aliased version
        return self.alias(name, alias)

    def rollback(self, name: str, alias: str, *, user: str | None = None) -> Alias:
        """Point ``alias`` back at its previous target."""
        cur = self.alias(name, alias)
        if cur is None or cur.previous is None:
            raise Conflict(f"alias {alias!r} of model {name!r} has no previous version to roll back to")
        return self.set_alias(name, alias, cur.previous, user=user)

    # -- removing
    def remove(self, name: str, version: int) -> None:
        """Delete a version; refused while an alias points at it."""
        version = int(version)
        self.get(name, version)
        self._refuse_if_aliased(name, version)
        record = self._vdir(name, version, "version.msgpack")
        hidden = self._vdir(name, version, "removing.msgpack")
        self.store.rename(record, hidden)   # invisible from here on: set_alias now refuses it
        try:
            self._refuse_if_aliased(name, version)
        except Conflict:
            self.store.rename(hidden, record)
            raise
        # the directory stays, holding only the tombstone, so the number is never handed out again
        self.store.delete(self._vdir(name, version, "model"))
        self.store.delete(self._vdir(name, version, "evaluations"))

    def _refuse_if_aliased(self, name: str, version: int) -> None:
        held = sorted(a for a, st in self.aliases(name).items() if st.version == version)
        if held:
            raise Conflict(f"model {name!r} version {version} is the target of alias(es) "
                           f"{', '.join(held)}; move them first")

    # -- evaluations and serving options
    def add_evaluation(self, name: str, version: int, metrics: dict, *, dataset: str = "",
                       user: str | None = None, run: str = "") -> dict:
        """Keep an evaluation's metrics with a version (a new record; the version itself is unchanged).

        ``run``: the served evaluation run it comes from; a run adds one record
        however often it is retried (a resumed run finds its record there).
        """
        self.get(name, version)
        edir = self._vdir(name, version, "evaluations")
        self.store.makedirs(edir)
        if run:
            for n in self.store.listdir(edir):
                if n.endswith(f"-{run}.msgpack"):
                    return _unpack(self.store.read(f"{edir}/{n}"), n)
        rec = {"dataset": dataset, "metrics": metrics, "by": user or current_user(), "at": time.time()}
        if run:
            rec["run"] = run
        self.store.write(f"{edir}/{time.time_ns():020d}{'-' + run if run else ''}.msgpack", _pack(rec))
        return rec

    # -- served evaluation runs and the served set: state a service keeps here, so a restart keeps it
    def save_run(self, name: str, run: dict) -> dict:
        """Write a served evaluation run's record (``run["id"]`` names it; rewritten as it moves on)."""
        rdir = self._dir(name, "runs")
        self.store.makedirs(rdir)
        self.store.write(f"{rdir}/{_check_run(run['id'])}.msgpack", _pack(run))
        return run

    def read_run(self, name: str, run_id: str) -> dict:
        """One run's record; ``NotFound`` for an unknown one."""
        path = self._dir(name, "runs", f"{_check_run(run_id)}.msgpack")
        try:
            return _unpack(self.store.read(path), path)
        except FileNotFoundError:
            raise NotFound(f"no evaluation run {run_id} of model {name!r}") from None

    def runs(self, name: str) -> list[dict]:
        """Every run of a model, oldest first."""
        rdir = self._dir(name, "runs")
        recs = [_unpack(self.store.read(f"{rdir}/{n}"), n) for n in self.store.listdir(rdir)
                if n.endswith(".msgpack")]
        return sorted(recs, key=lambda r: r.get("started_at", 0.0))

    def served(self, name: str) -> dict:
        """What a service last had loaded for ``name``: {"aliases": [...], "versions": [...]}."""
        path = self._dir(name, "served.msgpack")
        try:
            rec = _unpack(self.store.read(path), path)
        except FileNotFoundError:
            return {"aliases": [], "versions": []}
        return {"aliases": list(rec.get("aliases", [])), "versions": list(rec.get("versions", []))}

    def set_served(self, name: str, aliases, versions) -> None:
        self.store.write(self._dir(name, "served.msgpack"),
                         _pack({"aliases": sorted(aliases), "versions": sorted(versions), "at": time.time()}))

    def evaluations(self, name: str, version: int) -> list[dict]:
        """The stored evaluations of one version."""
        edir = self._vdir(name, version, "evaluations")
        return [_unpack(self.store.read(f"{edir}/{n}"), n) for n in self.store.listdir(edir)
                if n.endswith(".msgpack")]

    def serving_options(self, name: str) -> dict:
        """The serving options saved for ``name`` (batching and so on), or defaults."""
        path = self._dir(name, "serving.msgpack")
        try:
            return _unpack(self.store.read(path), path)
        except FileNotFoundError:
            return {}

    def set_serving_options(self, name: str, **options) -> dict:
        """Micro-batching for a model: ``max_batch_size``, ``max_batch_wait_ms``, ``max_queue`` (0 turns off)."""
        self.versions(name)
        allowed = {"max_batch_size", "max_batch_wait_ms", "max_queue"}
        bad = set(options) - allowed
        if bad:
            raise ModelError(f"unknown serving option(s) {sorted(bad)}; known: {sorted(allowed)}")
        for k, v in options.items():
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise ModelError(f"serving option {k} must be a number >= 0, got {v!r}")
        merged = {**self.serving_options(name), **options}
        self.store.write(self._dir(name, "serving.msgpack"), _pack(merged))
        return merged


# -- lineage


def lineage(model, inputs, seed, code) -> dict:
    """Where a version came from: inputs with sizes and checksums, seed, mapred version, code hash."""
    from mapred.version import __version__
    return {"inputs": [_input_record(p) for p in _as_paths(inputs)],
            "seed": seed if seed is not None else getattr(model, "seed", None),
            "mapred_version": __version__, "code_sha256": code_hash(model, code)}


def _as_paths(inputs) -> list[str]:
    if inputs is None:
        return []
    if isinstance(inputs, (str, os.PathLike)) or hasattr(inputs, "path") or hasattr(inputs, "ds"):
        inputs = [inputs]
    out = []
    for item in inputs:
        item = getattr(item, "ds", item)           # models.Data
        out.append(str(getattr(item, "path", item)))  # ArrayDataset
    return out


def _input_record(path: str) -> dict:
    import mapred
    fs = mapred.filesystem(path)
    try:
        files = fs.expand(path)
    except Exception as exc:
        raise ModelError(f"lineage input {path} cannot be read: {exc}") from None
    digest, size = hashlib.sha256(), 0
    for f in files:
        with fs.open_read(f) as fh:
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                size += len(chunk)
    return {"path": path, "files": len(files), "bytes": size, "sha256": digest.hexdigest()}


def code_hash(model, code=None) -> str:
    """sha256 of the training code: ``code``'s source (a function, a Job's functions) or the model class's module."""
    target = code if code is not None else type(model)
    parts = []
    for obj in _code_objects(target):
        try:
            parts.append(inspect.getsource(obj))
        except (OSError, TypeError):
            parts.append(repr(getattr(obj, "__code__", obj)))
    if not parts:
        parts.append(repr(target))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _code_objects(target) -> list:
    if isinstance(target, (bytes, str)):
        return [target] if isinstance(target, str) else [target.decode(errors="replace")]
    if inspect.isclass(target):
        return [inspect.getmodule(target) or target]
    fns = [getattr(target, a, None) for a in ("mapper", "map_batch", "combiner", "reducer")]
    fns = [f for f in fns if callable(f)]
    return fns or [target]


# -- the package-level face


def register(model, name: str, *, registry: str | None = None, **kw) -> ModelVersion:
    """Register ``model`` as the next version of ``name`` (see ``Registry.register``)."""
    return Registry(registry).register(model, name, **kw)


def load_ref(ref: str, registry: str | None = None):
    """Load a ``models:/`` reference from ``registry`` (default: ``default_root()``)."""
    return Registry(registry).load(ref)


def _resolve(ref: str) -> str:
    """The model directory of a ``models:/`` reference in the default registry."""
    return Registry().resolve(ref).uri


add_resolver("models:/", _resolve)
