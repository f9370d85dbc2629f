"""What one ``mapred serve`` process is configured with, in one frozen value.

Built by the CLI from its options (and ``MAPRED_*`` environment variables),
or directly by tests.  Everything has a safe default: loopback only, a body
limit, a bound on requests in flight.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from mapred.errors import ConfigError

GiB = 1 << 30
DEFAULT_PORT = 8470


def default_token_file() -> str:
    """``$MAPRED_TOKEN_FILE``, else ``~/.mapred/tokens.json``."""
    return os.environ.get("MAPRED_TOKEN_FILE") or os.path.join(os.path.expanduser("~"), ".mapred", "tokens.json")


@dataclass(frozen=True)
class ServiceSettings:
    """Addresses of the cluster, where tokens live, and the service's limits.

    ``namenode`` and ``master`` are ``tcp://H:P`` (either may be empty: the
    routes that need it then answer 503).  ``redirect_base`` is where a WebHDFS
    CREATE/APPEND is sent for its data step; empty means this service itself
    (HttpFS style), so a client that reaches the service can always finish.
    ``routers`` names extra router modules to mount (see ``app.ROUTERS``).
    """

    namenode: str = ""
    master: str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token_file: str = field(default_factory=default_token_file)
    secret: str = ""                       # the cluster's CURVE secret, for talking to its nodes
    max_body_bytes: int = 16 * GiB         # larger request bodies get 413
    max_json_bytes: int = 1 << 20          # JSON bodies (job state, named operations)
    max_in_flight: int = 64                # more concurrent requests get 503 + Retry-After
    retry_after_s: int = 1
    body_timeout_s: float = 30.0           # a body chunk slower than this ends the upload (408)
    redirect_base: str = ""
    replication: int = 0                   # 0 = the store's default
    status_cache_s: float = 1.0            # how long cluster-wide facts (metrics, page) are reused
    routers: tuple = ()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"service port {self.port} is not in 0..65535")
        for name in ("max_body_bytes", "max_in_flight", "max_json_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"service setting {name}={getattr(self, name)} must be at least 1")
        if self.redirect_base and not self.redirect_base.startswith(("http://", "https://")):
            raise ConfigError(f"redirect base {self.redirect_base!r} must be an http:// or https:// URL")

    def with_(self, **changes) -> ServiceSettings:
        return replace(self, **changes)
