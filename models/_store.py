"""The few file operations the model registry needs, on a local directory or the block store.

The registry's rules (versions never reused, an alias move never lost or
torn) rest on two atomic primitives that both stores have:

- ``mkdir_new``: create a directory that must not exist yet (the NameNode's
  ``mkdir`` without ``parents`` and ``os.mkdir`` both refuse an existing one),
  which hands out each version number to exactly one registrant;
- ``create_new``: publish a small file that must not exist yet (the
  NameNode refuses a second create of a path that exists or is being written;
  locally a finished temporary file is hard-linked into place, which fails if
  the name is taken), which makes an alias log a compare-and-swap.

``write`` replaces a file atomically (the store makes a file visible only when
its writer closes; locally ``os.replace``).
"""
from __future__ import annotations

import os
import shutil
import uuid

from mapred.errors import FileExists, FileNotFound, ModelError, StorageError


class AlreadyExists(ModelError):
    """The path an exclusive create or mkdir named is taken."""


def open_store(root: str) -> LocalStore | MrfsStore:
    """The store behind a registry root: ``mrfs://host:port/path`` or a local directory."""
    root = str(root)
    if root.startswith("mrfs://"):
        return MrfsStore(root)
    return LocalStore(os.path.abspath(os.path.expanduser(root)))


class LocalStore:
    """A registry on a local directory (tests, laptops, a shared POSIX mount)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def join(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def mkdir_new(self, path: str) -> None:
        try:
            os.mkdir(path)
        except FileExistsError:
            raise AlreadyExists(f"{path} already exists") from None

    def create_new(self, path: str, data: bytes) -> None:
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise AlreadyExists(f"{path} already exists") from None
        finally:
            os.unlink(tmp)

    def write(self, path: str, data: bytes) -> None:
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(n for n in os.listdir(path) if not n.endswith(".tmp"))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def rename(self, src: str, dst: str) -> None:
        if os.path.exists(dst):
            raise AlreadyExists(f"{dst} already exists")
        os.rename(src, dst)

    def delete(self, path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


class MrfsStore:
    """A registry in the block store: replicated, journalled, shared by every host of the cluster."""

    def __init__(self, root: str) -> None:
        from mapred.storage.fs import MrFS, split_uri
        netloc, self.base = split_uri(root)
        self.netloc = netloc
        self.root = f"mrfs://{netloc}{self.base.rstrip('/')}"
        self._fs = MrFS.for_uri(self.root)

    @property
    def client(self):
        return self._fs.client

    def join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def _p(self, uri: str) -> str:
        return self._fs._p(uri)

    def makedirs(self, path: str) -> None:
        self.client.mkdir(self._p(path), parents=True)

    def mkdir_new(self, path: str) -> None:
        try:
            self.client.mkdir(self._p(path), parents=False)
        except FileExists:
            raise AlreadyExists(f"{path} already exists") from None

    def create_new(self, path: str, data: bytes) -> None:
        try:
            f = self.client.open(self._p(path), "wb", overwrite=False)
        except FileExists:
            raise AlreadyExists(f"{path} already exists") from None
        except StorageError as exc:
            if "being written" in str(exc):
                raise AlreadyExists(f"{path} is being created by another client") from None
            raise
        with f:
            f.write(data)

    def write(self, path: str, data: bytes) -> None:
        with self.client.open(self._p(path), "wb", overwrite=True) as f:
            f.write(data)

    def read(self, path: str) -> bytes:
        try:
            return self.client.read_bytes(self._p(path))
        except FileNotFound:
            raise FileNotFoundError(path) from None

    def exists(self, path: str) -> bool:
        return self.client.exists(self._p(path))

    def listdir(self, path: str) -> list[str]:
        try:
            entries = self.client.ls(self._p(path))
        except FileNotFound:
            return []
        base = self._p(path).rstrip("/") + "/"
        return sorted(e["path"][len(base):] for e in entries if e["path"].startswith(base))

    def rename(self, src: str, dst: str) -> None:
        try:
            self.client.mv(self._p(src), self._p(dst))
        except FileExists:
            raise AlreadyExists(f"{dst} already exists") from None

    def delete(self, path: str) -> None:
        try:
            self.client.rm(self._p(path), recursive=True)
        except FileNotFound:
            pass
