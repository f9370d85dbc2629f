"""Tunables with defaults, overridable by a config file and ``MAPRED_*`` environment variables.

Precedence (lowest first): the defaults below, a JSON or ``key = value`` file
named by ``MAPRED_CONFIG``, then ``MAPRED_<NAME>`` variables (for example
``MAPRED_DEAD_TIMEOUT=3``).  Values are converted to the default's type.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace

from mapred.errors import ConfigError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Config:
    # compute
    """Every tunable with its default; ``load()`` applies the file, the environment and overrides."""
    split_size: int = 64 * MiB           # bytes of text per map split (also the block size for mrfs)
    # map-side sort buffer in Python-object bytes (about 3-4x their msgpack size, so 128 MiB holds
    # roughly what Hadoop's 100 MB serialized io.sort.mb does); past it the combiner runs, then a spill
    sort_buffer_bytes: int = 128 * MiB
    reduce_buffer_bytes: int = 128 * MiB # reduce-side in-memory fetch budget before merging on disk
    spill_compression: str = "none"      # "none" or "lz4"
    max_attempts: int = 4                # attempts per task before the job fails
    batch_lines: int = 131072            # lines per map_batch call for text input
    executor_memory_cap: int = 0         # bytes of RSS per executor; 0 = no cap
    # liveness
    heartbeat_interval: float = 1.0
    dead_timeout: float = 10.0
    # scheduling
    speculation: bool = True
    speculation_slowdown: float = 3.0    # a task this many times slower than its peers' median gets a backup
    blacklist_failures: int = 3          # failures of one job's tasks on one worker before it is avoided
    job_history: int = 100               # finished jobs kept for `mapred job list/status` ...
    job_history_seconds: float = 86400.0 # ... and for no longer than this
    master_grace: float = 60.0           # seconds a client's wait() rides out a silent (restarting) master
    # storage
    block_size: int = 64 * MiB
    replication: int = 3
    safemode_threshold: float = 0.999
    # security (docs/security.md)
    secret: str = ""                     # legacy: one shared secret, every holder is admin
    keys: str = ""                       # a key directory: per-principal CURVE keys + authorized_keys
    principal: str = ""                  # who this process is: <keys>/<principal>.key
    max_message_bytes: int = 256 * MiB   # any larger frame is refused by ZeroMQ before it is read


def _coerce(name: str, raw: str, default):
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return type(default)(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}={raw!r} is not a valid {type(default).__name__}") from None


def _file_values(path: str) -> dict:
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        return json.loads(text)
    values = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def load(**overrides) -> Config:
    """The effective config: defaults, then the file, then the environment, then ``overrides``."""
    base = Config()
    known = {f.name: getattr(base, f.name) for f in fields(Config)}
    values: dict = {}
    path = os.environ.get("MAPRED_CONFIG")
    if path:
        values.update(_file_values(path))
    for name in known:
        env = os.environ.get("MAPRED_" + name.upper())
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    typed = {k: v if not isinstance(v, str) or isinstance(known[k], str) else _coerce(k, v, known[k])
             for k, v in values.items()}
    return replace(base, **typed)
