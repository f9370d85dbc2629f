"""``MrFS``: the engine's ``FileSystem`` protocol over the block store, for ``mrfs://host:port/path``.

Paths handed to every method are full URIs; the ``host:port`` names the
NameNode (``tcp://host:port``).  ``MrFS.for_uri`` keeps one instance (one
Client) per NameNode per process.  ``block_locations`` returns the file's
real blocks with the hosts of their live replicas, so text splits follow
blocks and the scheduler can place map tasks beside their data.
"""
from __future__ import annotations

import fnmatch
import os
import threading
from typing import BinaryIO

from mapred.errors import FileNotFound, InputError, StorageError
from mapred.storage.client import Client

SCHEME = "mrfs://"
_instances: dict[tuple, "MrFS"] = {}
_lock = threading.Lock()


def split_uri(uri: str) -> tuple[str, str]:
    """``("host:port", "/path")`` of an ``mrfs://host:port/path`` URI."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise StorageError(f"{uri!r} is not an mrfs://host:port/path URI")
    rest = uri[len(SCHEME):]
    netloc, slash, path = rest.partition("/")
    if not netloc or ":" not in netloc:
        raise StorageError(f"{uri!r} lacks the NameNode's host:port")
    return netloc, "/" + path.rstrip("/") if path.strip("/") else "/"


def _visible(name: str) -> bool:
    return not name.startswith(("_", "."))


class MrFS:
    """The FileSystem protocol of ``mapred.io.fs`` on one NameNode."""

    def __init__(self, netloc: str, client: Client | None = None) -> None:
        self.netloc = netloc
        self.client = client or Client("tcp://" + netloc)

    @classmethod
    def for_uri(cls, uri: str) -> "MrFS":
        """The file system of an ``mrfs://host:port/...`` URI (one client per NameNode, shared)."""
        netloc, _ = split_uri(uri)
        key = (netloc, os.getpid())   # a forked child must not reuse its parent's sockets
        with _lock:
            if key not in _instances:
                _instances[key] = cls(netloc)
            return _instances[key]

    def _p(self, uri: str) -> str:
        netloc, path = split_uri(uri)
        if netloc != self.netloc:
            raise StorageError(f"{uri} belongs to NameNode {netloc}, not {self.netloc}")
        return path

    def _uri(self, path: str) -> str:
        return f"{SCHEME}{self.netloc}{path}"

    def expand(self, pattern: str) -> list[str]:
        """Files named by ``pattern``: a file, a directory (its visible files, recursively), a glob."""
        path = self._p(pattern)
        if any(ch in path for ch in "*?["):
            matches = self._glob(path)
            if not matches:
                raise InputError(f"input glob {pattern!r} matches no files")
        elif self.client.exists(path):
            matches = [path]
        else:
            raise InputError(f"input path {pattern!r} does not exist")
        files: list[str] = []
        for p in matches:
            files.extend(self._files_under(p))
        return [self._uri(p) for p in files]

    def _glob(self, path: str) -> list[str]:
        found = ["/"]
        for part in path.strip("/").split("/"):
            nxt = []
            for base in found:
                try:
                    entries = self.client.ls(base)
                except FileNotFound:
                    continue
                for e in entries:
                    name = e["path"].rsplit("/", 1)[1]
                    if fnmatch.fnmatchcase(name, part):
                        nxt.append(e["path"])
            found = nxt
        return sorted(found)

    def _files_under(self, path: str) -> list[str]:
        st = self.client.stat(path)
        if st["type"] == "file":
            return [path]
        out = []
        for e in self.client.ls(path):
            if _visible(e["path"].rsplit("/", 1)[1]):
                out.extend(self._files_under(e["path"]) if e["type"] == "dir" else [e["path"]])
        return out

    def size(self, path: str) -> int:
        """The file's length in bytes."""
        return self.client.stat(self._p(path))["length"]

    def open_read(self, path: str) -> BinaryIO:
        """A reader of the file's blocks (local replicas first)."""
        return self.client.open(self._p(path), "rb")

    def open_write(self, path: str) -> BinaryIO:
        """A writer that replaces any old file when closed (the file appears only then)."""
        return self.client.open(self._p(path), "wb", overwrite=True)

    def exists(self, path: str) -> bool:
        """Whether a file or directory is there."""
        return self.client.exists(self._p(path))

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a directory."""
        try:
            return self.client.stat(self._p(path))["type"] == "dir"
        except FileNotFound:
            return False

    def makedirs(self, path: str) -> None:
        """Make the directory and its parents."""
        self.client.mkdir(self._p(path), parents=True)

    def listdir(self, path: str) -> list[str]:
        """The names in a directory."""
        p = self._p(path)
        if self.client.stat(p)["type"] != "dir":
            raise StorageError(f"{path} is not a directory")
        return sorted(e["path"].rsplit("/", 1)[1] for e in self.client.ls(p))

    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` to exactly ``dst`` (never into it)."""
        self.client.mv(self._p(src), self._exact_target(dst))

    def _exact_target(self, dst: str) -> str:
        path = self._p(dst)
        if self.isdir(dst):
            raise StorageError(f"rename target {dst} exists and is a directory")
        return path

    def delete(self, path: str, recursive: bool = False) -> None:
        """Delete a file or directory; a missing path is not an error (as ``LocalFS``)."""
        try:
            self.client.rm(self._p(path), recursive=recursive)
        except FileNotFound:
            pass

    def block_locations(self, path: str, chunk: int) -> list[tuple[int, int, tuple]]:
        """The file's blocks ``(offset, length, hosts)``; blocks longer than ``chunk`` are cut."""
        out = []
        for offset, length, hosts in self.client.block_locations(self._p(path)):
            step = chunk if chunk > 0 else length
            for start in range(offset, offset + length, max(1, step)):
                out.append((start, min(step, offset + length - start), hosts))
        return out

    def join(self, *parts: str) -> str:
        """Join URI parts with ``/``."""
        head = parts[0].rstrip("/")
        rest = [p.strip("/") for p in parts[1:] if p.strip("/")]
        return "/".join([head, *rest])
