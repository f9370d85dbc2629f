"""HMAC tokens: short strings a server signs and another server checks, with no lookup.

A token is ``field.field....field.mac`` where ``mac`` is the first 32 hex
digits of HMAC-SHA256 over the fields under a key only the signer and the
checkers hold.  Fields are plain text without dots, so a token needs no
parser beyond ``split``.

Two kinds live here:

* **Block tokens** (HDFS's block access tokens): the NameNode signs
  ``(block id, generation stamp, mode, expiry)``; a DataNode serves a read or
  accepts a write only with a valid, unexpired token for that block and mode.
  A token cannot be stretched to another block, another generation or the
  other mode, and it dies at its expiry.
* **Job tokens** (Hadoop's shuffle secret): the master signs a job id; a
  worker's shuffle server serves that job's map output only to a fetch that
  presents the job's token.

``TokenError`` says why a token was refused, so the refusal can be logged
and counted with its reason.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from mapred.errors import MapredError

MAC_HEX = 32                  # 128 bits of HMAC-SHA256: plenty against forgery, short on the wire
READ, WRITE = "r", "w"
DEFAULT_LIFETIME = 600.0      # seconds a block token lives (a reader re-asks the NameNode after)


class TokenError(MapredError):
    """A token that is missing, malformed, forged, expired or for something else."""


def new_key() -> bytes:
    """A fresh random 256-bit signing key."""
    return os.urandom(32)


def _mac(key: bytes, fields: list[str]) -> str:
    return hmac.new(key, ".".join(fields).encode(), hashlib.sha256).hexdigest()[:MAC_HEX]


def sign(key: bytes, *fields) -> str:
    """``fields`` (stringified, no dots allowed) followed by their MAC."""
    text = [str(f) for f in fields]
    if any("." in f for f in text):
        raise ValueError(f"token fields may not contain '.': {text!r}")
    return ".".join(text + [_mac(key, text)])


def open_token(key: bytes, token: str, n_fields: int) -> list[str]:
    """The fields of a genuine token with ``n_fields`` fields; ``TokenError`` otherwise."""
    if not token:
        raise TokenError("no token")
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != n_fields + 1:
        raise TokenError("malformed token")
    fields, mac = parts[:-1], parts[-1]
    if not key or not hmac.compare_digest(_mac(key, fields), mac):
        raise TokenError("token signature does not verify")
    return fields


# -- block tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockGrant:
    """What a verified block token allows."""

    block_id: int
    gen: int
    mode: str
    expiry: float


def block_token(key: bytes, block_id: int, gen: int, mode: str, expiry: float) -> str:
    """A token allowing ``mode`` (``READ``/``WRITE``) on ``block_id`` at generation ``gen`` until ``expiry``."""
    if mode not in (READ, WRITE):
        raise ValueError(f"block token mode {mode!r} is not 'r' or 'w'")
    return sign(key, int(block_id), int(gen), mode, int(expiry))


def check_block_token(key: bytes, token: str, block_id: int, mode: str, now: float) -> BlockGrant:
    """The grant of ``token`` if it is genuine, unexpired and for ``block_id`` and ``mode``."""
    fields = open_token(key, token, 4)
    try:
        grant = BlockGrant(int(fields[0]), int(fields[1]), fields[2], float(fields[3]))
    except ValueError:
        raise TokenError("malformed token") from None
    if grant.block_id != int(block_id):
        raise TokenError(f"token is for block {grant.block_id}, not {block_id}")
    if grant.mode != mode:
        raise TokenError(f"token allows {'reads' if grant.mode == READ else 'writes'} only")
    if now > grant.expiry:
        raise TokenError("token expired")
    return grant


# -- job tokens -------------------------------------------------------------------------------


def job_token(key: bytes, job_id: str) -> str:
    """The shuffle token of ``job_id``: whoever holds it may fetch that job's map output."""
    return sign(key, job_id)


def check_job_token(token: str, job_id: str, expected: str) -> None:
    """``TokenError`` unless ``token`` is ``expected``, the token the master gave for ``job_id``."""
    if not token:
        raise TokenError(f"no job token for job {job_id}")
    if not expected or not hmac.compare_digest(token, expected):
        raise TokenError(f"wrong job token for job {job_id}")
