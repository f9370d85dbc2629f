"""The NameNode's durable memory: an edit log fsynced before every acknowledgement, and checkpoints.

Layout of the NameNode data directory::

    image          msgpack of Namespace.image() (carries the txid it includes)
    edits          records: u32 length | u32 crc32c | msgpack {"txid": n, "ops": [...]}

A record is appended, flushed and fsynced before the request it belongs to is
answered, so a kill -9 loses nothing that was acknowledged.  A torn record at
the tail (the crash hit mid-write) fails its CRC and is cut off on replay:
it was never acknowledged.  ``checkpoint`` writes a new image to a temporary
file, fsyncs and renames it into place, then starts an empty log; a crash
between the two steps is harmless because replay skips records whose txid
the image already includes.
"""
from __future__ import annotations

import logging
import os
import struct

import crc32c
import msgpack

from mapred.errors import StorageError
from mapred.storage.namespace import Namespace

log = logging.getLogger(__name__)

_HEAD = struct.Struct("<II")
MAX_RECORD = 64 * 1024 * 1024


class Journal:
    """Append-only edit log plus checkpoint image in ``directory``."""

    def __init__(self, directory: str, checkpoint_every: int = 10000, sync: bool = True) -> None:
        self.dir = directory
        self.checkpoint_every = checkpoint_every
        self.sync = sync
        os.makedirs(directory, exist_ok=True)
        self.image_path = os.path.join(directory, "image")
        self.edits_path = os.path.join(directory, "edits")
        self._edits = None
        self.since_checkpoint = 0

    def load(self) -> Namespace:
        """The namespace from the image plus every intact edit; opens the log for appending."""
        ns = self._load_image()
        good_end = self._replay(ns)
        self._edits = open(self.edits_path, "ab")
        if self._edits.tell() != good_end:
            log.warning("cutting a torn edit-log tail at byte %d of %d", good_end, self._edits.tell())
            self._edits.truncate(good_end)
            self._fsync()
        return ns

    def _load_image(self) -> Namespace:
        if not os.path.exists(self.image_path):
            return Namespace()
        with open(self.image_path, "rb") as f:
            raw = f.read()
        try:
            return Namespace.from_image(msgpack.unpackb(raw, raw=False, strict_map_key=False))
        except Exception as exc:
            raise StorageError(f"namespace image {self.image_path} is unreadable: {exc}") from None

    def _replay(self, ns: Namespace) -> int:
        """Apply records after the image's txid; return the offset after the last good record."""
        if not os.path.exists(self.edits_path):
            return 0
        with open(self.edits_path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + _HEAD.size <= len(data):
            length, crc = _HEAD.unpack_from(data, pos)
            body = data[pos + _HEAD.size: pos + _HEAD.size + length]
            if length > MAX_RECORD or len(body) != length or crc32c.crc32c(body) != crc:
                break
            record = msgpack.unpackb(body, raw=False, strict_map_key=False)
            if record["txid"] > ns.txid:
                for op in record["ops"]:
                    ns.apply(op)
                self.since_checkpoint += 1
            pos += _HEAD.size + length
        return pos

    def append(self, ops: list[dict], txid: int) -> None:
        """Durably log ``ops`` (which will bring the namespace to ``txid``); returns once on disk."""
        body = msgpack.packb({"txid": txid, "ops": ops}, use_bin_type=True)
        self._edits.write(_HEAD.pack(len(body), crc32c.crc32c(body)) + body)
        self._edits.flush()
        self._fsync()
        self.since_checkpoint += 1

    def _fsync(self) -> None:
        if self.sync:
            os.fsync(self._edits.fileno())

    def due(self) -> bool:
        """Whether enough edits piled up for a checkpoint."""
        return self.since_checkpoint >= self.checkpoint_every

    def checkpoint(self, ns: Namespace) -> None:
        """Write ``ns`` as the new image and start an empty edit log."""
        tmp = self.image_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(msgpack.packb(ns.image(), use_bin_type=True))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.image_path)
        self._fsync_dir()
        self._edits.close()
        self._edits = open(self.edits_path, "wb")
        self._fsync()
        self._fsync_dir()
        self.since_checkpoint = 0

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close the edits file."""
        if self._edits is not None:
            self._edits.close()
            self._edits = None
