"""The file systems jobs read and write: local paths and ``mrfs://`` paths of the block store.

The engine touches input and output only through ``FileSystem``, so a split
reader, the output committer and ``Result`` work the same on a laptop
directory and on the replicated store.  ``get_fs(path)`` picks the
implementation from the scheme.
"""
from __future__ import annotations

import glob as _glob
import os
import shutil
import socket
from typing import BinaryIO, Protocol

from mapred.errors import InputError

HOSTNAME = socket.gethostname()


class FileSystem(Protocol):
    """What the engine needs of a file system.  ``mrfs`` implements the same methods."""

    def expand(self, pattern: str) -> list[str]:
        """The files a path, directory or glob names, sorted; hidden and ``_`` names skipped in directories."""

    def size(self, path: str) -> int:
        """The file's length in bytes."""

    def open_read(self, path: str) -> BinaryIO:
        """A binary file object to read from."""

    def open_write(self, path: str) -> BinaryIO:
        """A binary file object to write; the file is complete when it is closed."""

    def exists(self, path: str) -> bool:
        """Whether a file or directory is there."""

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a directory."""

    def makedirs(self, path: str) -> None:
        """Make the directory and its parents (no error if it exists)."""

    def listdir(self, path: str) -> list[str]:
        """The names in a directory."""

    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst`` (atomic on one file system: the commit protocol relies on it)."""

    def delete(self, path: str, recursive: bool = False) -> None:
        """Remove a file, or a directory tree with ``recursive``."""

    def block_locations(self, path: str, chunk: int) -> list[tuple[int, int, tuple]]:
        """``(offset, length, hosts)`` per block (local files: per ``chunk`` bytes, this host)."""

    def join(self, *parts: str) -> str:
        """The parts joined with this file system's separator."""


def _visible(name: str) -> bool:
    """Hadoop's rule: names starting with ``_`` or ``.`` (``_SUCCESS``, temp dirs) are not data."""
    return not name.startswith(("_", "."))


class LocalFS:
    """Plain local files.  Directories expand to their visible files, recursively, in name order."""

    def expand(self, pattern: str) -> list[str]:
        """The files ``pattern`` names: a file, every visible file under a directory, or a glob's matches, sorted."""
        if _glob.has_magic(pattern):
            matches = sorted(_glob.glob(pattern))
            if not matches:
                raise InputError(f"input glob {pattern!r} matches no files")
        elif os.path.exists(pattern):
            matches = [pattern]
        else:
            raise InputError(f"input path {pattern!r} does not exist")
        files: list[str] = []
        for path in matches:
            if os.path.isdir(path):
                for root, dirs, names in os.walk(path):
                    dirs[:] = sorted(d for d in dirs if _visible(d))
                    files.extend(os.path.join(root, n) for n in sorted(names) if _visible(n))
            else:
                files.append(path)
        return files

    def size(self, path: str) -> int:
        """The file's length in bytes."""
        return os.path.getsize(path)

    def open_read(self, path: str) -> BinaryIO:
        """The file opened for binary reading."""
        return open(path, "rb")

    def open_write(self, path: str) -> BinaryIO:
        """The file opened for binary writing (parent directories made first)."""
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return open(path, "wb")

    def exists(self, path: str) -> bool:
        """Whether a file or directory is there."""
        return os.path.exists(path)

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a directory."""
        return os.path.isdir(path)

    def makedirs(self, path: str) -> None:
        """Make the directory and its parents (no error if it exists)."""
        os.makedirs(path, exist_ok=True)

    def listdir(self, path: str) -> list[str]:
        """The names in a directory."""
        return sorted(os.listdir(path))

    def rename(self, src: str, dst: str) -> None:
        """``os.replace``: atomic on one file system, which the commit protocol needs."""
        os.replace(src, dst)

    def delete(self, path: str, recursive: bool = False) -> None:
        """Remove a file, or a directory tree with ``recursive``; a missing path is no error."""
        if os.path.isdir(path) and recursive:
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.isdir(path):
            os.rmdir(path)
        elif os.path.exists(path):
            os.remove(path)

    def block_locations(self, path: str, chunk: int) -> list[tuple[int, int, tuple]]:
        """``chunk``-sized pieces of the file, all on this host (locality is trivial locally)."""
        size = self.size(path)
        return [(start, min(chunk, size - start), (HOSTNAME,)) for start in range(0, size, chunk)]

    def join(self, *parts: str) -> str:
        """``os.path.join``."""
        return os.path.join(*parts)


LOCAL = LocalFS()


def is_mrfs(path: str) -> bool:
    """Whether ``path`` is an ``mrfs://`` URI of the block store."""
    return str(path).startswith("mrfs://")


def get_fs(path: str) -> FileSystem:
    """The file system that serves ``path``."""
    if is_mrfs(path):
        from mapred.storage.fs import MrFS  # imported late: the store is optional for local jobs
        return MrFS.for_uri(path)
    return LOCAL
