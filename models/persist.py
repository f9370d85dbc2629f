"""Saving and loading models: a versioned directory of msgpack metadata and ``.npy`` arrays.

Why not pickle: a model file may come from anywhere, and unpickling runs
code.  A model directory holds ``model.msgpack`` (format name and version,
class, constructor parameters, scalar attributes, and for each array its file,
shape, dtype and byte size) and one ``.npy`` per array, loaded with
``allow_pickle=False``.  Byte sizes and a CRC32 per array catch truncated or
altered files with an error naming the file.  Paths may be local or
``mrfs://`` (the block store), through the engine's file-system seam.
"""
from __future__ import annotations

import io
import os
import zlib

import msgpack
import numpy as np

from mapred.errors import ModelError

FORMAT = "mapred-model"
VERSION = 1
META = "model.msgpack"

_REGISTRY: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` loadable by name from a model directory."""
    _REGISTRY[cls.__name__] = cls
    return cls


def _fs(path: str):
    """The file system for ``path``; mrfs:// through mapred's file-system seam."""
    if str(path).startswith("mrfs://"):
        import mapred
        return mapred.filesystem(path)
    return None


def _write(path: str, data: bytes) -> None:
    fs = _fs(path)
    if fs is None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    else:
        with fs.open_write(path) as f:
            f.write(data)


def _read(path: str) -> bytes:
    fs = _fs(path)
    try:
        if fs is None:
            with open(path, "rb") as f:
                return f.read()
        with fs.open_read(path) as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise ModelError(f"model file {path} is missing ({exc.__class__.__name__})") from None
    except Exception as exc:  # the store's FileNotFound and friends
        if "NotFound" in type(exc).__name__ or "not exist" in str(exc):
            raise ModelError(f"model file {path} is missing") from None
        raise


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _plain(value):
    """Parameters and attributes as msgpack-safe values (numpy scalars to Python, tuples to lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def save_model(path: str, kind: str, params: dict, attrs: dict, arrays: dict) -> str:
    """Write a model directory; arrays first, metadata last, so a half-written save has no metadata."""
    entries = {}
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype.hasobject:
            raise ModelError(f"array {name!r} has dtype object and cannot be saved without pickle")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        raw = buf.getvalue()
        _write(_join(path, name + ".npy"), raw)
        entries[name] = {"file": name + ".npy", "shape": list(arr.shape), "dtype": arr.dtype.str,
                         "bytes": len(raw), "crc32": zlib.crc32(raw)}
    meta = {"format": FORMAT, "version": VERSION, "class": kind, "params": _plain(params),
            "attrs": _plain(attrs), "arrays": entries}
    _write(_join(path, META), msgpack.packb(meta, use_bin_type=True))
    return path


def read_model(path: str) -> tuple[dict, dict]:
    """Read a model directory: (metadata, arrays), checking format, version and every file."""
    meta_path = _join(path, META)
    raw = _read(meta_path)
    try:
        meta = msgpack.unpackb(raw, raw=False)
    except Exception as exc:
        raise ModelError(f"model file {meta_path} is truncated or corrupt: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{meta_path} is not a mapred model file")
    if meta.get("version") != VERSION:
        raise ModelError(f"model file {meta_path} has format version {meta.get('version')}; "
                         f"this mapred reads version {VERSION}")
    arrays = {}
    for name, entry in meta.get("arrays", {}).items():
        file = _join(path, entry["file"])
        data = _read(file)
        if len(data) != entry["bytes"] or zlib.crc32(data) != entry["crc32"]:
            raise ModelError(f"model file {file} is truncated or corrupt "
                             f"({len(data)} bytes, expected {entry['bytes']})")
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:
            raise ModelError(f"model file {file} cannot be read: {exc}") from None
        arrays[name] = arr
    return meta, arrays


_resolvers: dict = {}     # reference prefix -> fn(reference) -> model directory


def add_resolver(prefix: str, fn) -> None:
    """Let ``load`` take references starting with ``prefix`` (the registry adds ``models:/``).

    A seam instead of an import: the registry builds on this module, so this
    module must not import the registry back.
    """
    _resolvers[prefix] = fn


def load(path: str):
    """Load any saved model; the class comes from the metadata, never from code in the file.

    ``path`` is a model directory (local or ``mrfs://``) or a registry
    reference (``models:/NAME/3``, ``models:/NAME@champion``).
    """
    path = str(path)
    for prefix, resolve in _resolvers.items():
        if path.startswith(prefix):
            path = resolve(path)
            break
    else:
        if path.startswith("models:/"):
            raise ModelError(f"{path} is a registry reference: import models (or models.registry) to resolve it")
    meta, arrays = read_model(path)
    cls = _REGISTRY.get(meta.get("class"))
    if cls is None:
        raise ModelError(f"model directory {path} holds an unknown model class {meta.get('class')!r}")
    if hasattr(cls, "_load_dir"):   # a composite (Pipeline) reads its steps from subdirectories
        return cls._load_dir(path, meta)
    return cls._from_saved(meta, arrays)


class Persistable:
    """Mixin: ``save(path)`` and ``load(path)`` from ``_params()``, ``_attrs()`` and ``_arrays()``."""

    _param_names: tuple = ()
    _array_names: tuple = ()
    _attr_names: tuple = ()

    def save(self, path: str) -> str:
        """Write the fitted model to a directory (local or ``mrfs://``); returns the path."""
        if not getattr(self, "fitted_", False):
            raise ModelError(f"{type(self).__name__} is not fitted; fit it before save")
        params = {k: getattr(self, k) for k in self._param_names}
        arrays = {k: getattr(self, k) for k in self._array_names if getattr(self, k, None) is not None}
        attrs = {k: getattr(self, k) for k in self._attr_names}
        attrs["history_"] = getattr(self, "history_", [])
        return save_model(path, type(self).__name__, params, attrs, arrays)

    @classmethod
    def load(cls, path: str):
        """Load a model saved by this class; another class in the directory is an error."""
        model = load(path)
        if not isinstance(model, cls):
            raise ModelError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    @classmethod
    def _from_saved(cls, meta: dict, arrays: dict):
        params = meta.get("params", {})
        model = cls(**{k: v for k, v in params.items() if k in cls._param_names})
        for k, v in meta.get("attrs", {}).items():
            setattr(model, k, v)
        for k in cls._array_names:
            setattr(model, k, arrays.get(k))
        model.fitted_ = True
        model._after_load()
        return model

    def _after_load(self) -> None:
        """Hook: restore derived state (e.g. a tuple from a list) after load."""
