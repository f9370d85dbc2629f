"""WebHDFS's GETFILECHECKSUM in Hadoop's shape: MD5 of the per-block MD5s of the chunk CRC32Cs.

HDFS's ``MD5MD5CRC32CastagnoliFileChecksum``: each block's MD5 is taken over
its chunk CRCs (big-endian u32, as an HDFS checksum file holds them), and the
file's MD5 over the block MD5s in order.  Nothing is read but the CRCs the
DataNodes already store (``Client.block_checksums``), so the answer costs a
few kilobytes whatever the file's size, and two files have the same checksum
when they have the same bytes in the same block and chunk layout (as in HDFS,
where ``distcp`` compares checksums only between equal layouts).

The algorithm name says the layout: ``MD5-of-<crcs per block>MD5-of-<bytes per
CRC>CRC32C``, where crcs-per-block is 0 for a file of one block, as Hadoop
writes it.  Our chunks are 64 KiB (HDFS's are 512 bytes), so the name reads
``MD5-of-0MD5-of-65536CRC32C`` for a small file.  ``bytes`` is the hex of the
28-byte Writable Hadoop serialises (int bytesPerCRC, long crcPerBlock, MD5).
"""
from __future__ import annotations

import hashlib
import struct


def md5_md5_crc32c(blocks: list[tuple[int, int, bytes]]) -> dict:
    """The ``FileChecksum`` JSON of a file whose blocks are ``[(block_length, chunk, crcs LE), ...]``."""
    file_md5 = hashlib.md5()
    bytes_per_crc = blocks[0][1] if blocks else 0
    crc_per_block = 0
    for i, (length, chunk, crcs) in enumerate(blocks):
        n = len(crcs) // 4
        big_endian = struct.pack(f">{n}I", *struct.unpack(f"<{n}I", crcs))
        file_md5.update(hashlib.md5(big_endian).digest())
        if i == 0 and len(blocks) > 1:       # Hadoop takes it from the first block, of a multi-block file
            crc_per_block = n
    raw = struct.pack(">iq", bytes_per_crc, crc_per_block) + file_md5.digest()
    return {"algorithm": f"MD5-of-{crc_per_block}MD5-of-{bytes_per_crc}CRC32C", "bytes": raw.hex(),
            "length": len(raw)}
