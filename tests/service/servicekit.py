"""What the service tests share: the handle on a running cluster + service, and its limits.

``service`` (see conftest.py, session scope) starts NameNode, 2 DataNodes, a master, one
worker and the HTTP service as processes on loopback (killed by pid at the
end, whatever happened) and yields a ``ServiceHandle``: its ``url``, an
``admin_token``, ``token(user, role)`` to make more, ``client(token)`` for an
``httpx.Client`` that sends it, and the ``cluster`` itself.  Other service
work (model serving, cleanup) reuses it: request ``service`` in a test.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import crc32c
import httpx

from mapred.runtime.procs import Cluster
from mapred.service.tokens import TokenStore

BODY_TIMEOUT = 3.0       # seconds a body may stall (the slow-client tests wait this long)
MAX_IN_FLIGHT = 48       # above the 32 concurrent clients of the load test
MAX_BODY = 1 << 30       # 1 GiB: the fsspec round trip is 200 MB


@dataclass
class ServiceHandle:
    url: str
    admin_token: str
    token_file: str
    cluster: Cluster

    def token(self, user: str, role: str = "user", expires_in: float | None = None) -> str:
        """A fresh token for ``user`` (the running service sees it at once)."""
        return TokenStore(self.token_file).create(user, role, expires_in)[0]

    def client(self, token: str | None = "", timeout: float = 30.0) -> httpx.Client:
        """An HTTP client of the service sending ``token`` (default: the admin's; None: no token)."""
        token = self.admin_token if token == "" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    @property
    def store_uri(self) -> str:
        """``mrfs://H:P`` prefix of paths in the cluster's store (for job inputs and outputs)."""
        return self.cluster.namenode_uri()

    @property
    def master(self) -> str:
        return self.cluster.master_addr


def hadoop_checksum(data: bytes, block_lengths: list[int], chunk: int = 64 << 10) -> dict:
    """HDFS's MD5MD5CRC32CastagnoliFileChecksum of ``data`` cut into these blocks, from the bytes alone.

    Computed here independently of the store: CRC32C of every chunk of every
    block (big-endian, as an HDFS checksum file holds them), MD5 per block,
    MD5 of those; the Writable is int bytesPerCRC, long crcPerBlock, MD5.
    """
    assert sum(block_lengths) == len(data)
    outer, pos, per_block = hashlib.md5(), 0, []
    for length in block_lengths:
        block = data[pos:pos + length]
        pos += length
        crcs = b"".join(crc32c.crc32c(block[i:i + chunk]).to_bytes(4, "big") for i in range(0, length, chunk))
        per_block.append(len(crcs) // 4)
        outer.update(hashlib.md5(crcs).digest())
    crc_per_block = per_block[0] if len(block_lengths) > 1 else 0
    raw = chunk.to_bytes(4, "big") + crc_per_block.to_bytes(8, "big") + outer.digest()
    return {"algorithm": f"MD5-of-{crc_per_block}MD5-of-{chunk}CRC32C", "bytes": raw.hex(), "length": 28}
