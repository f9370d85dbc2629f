"""Helpers shared by the storage integration tests."""
import hashlib
import random

BLOCK = 256 * 1024
FAST_ENV = {"MAPRED_ACK_TIMEOUT": "1.0"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(n: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (cheap to regenerate for checks)."""
    return random.Random(seed * 1000003 + n).randbytes(n)
