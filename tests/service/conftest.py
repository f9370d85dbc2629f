"""A real cluster with a block store and ``mapred serve`` in front of it, shared by the service tests.

``service`` (session scope) starts NameNode, 2 DataNodes, a master, one
worker and the HTTP service as processes on loopback (killed by pid at the
end, whatever happened) and yields a ``ServiceHandle``: its ``url``, an
``admin_token``, ``token(user, role)`` to make more, ``client(token)`` for an
``httpx.Client`` that sends it, and the ``cluster`` itself.  Other service
work (model serving, cleanup) reuses it: request ``service`` in a test.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import httpx
import pytest

from mapred.runtime.procs import Cluster
from mapred.service.tokens import TokenStore


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


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    """The shared cluster + service (see the module docstring)."""
    root = tmp_path_factory.mktemp("service")
    token_file = os.path.join(str(root), "tokens.json")
    admin, _ = TokenStore(token_file).create("root-admin", "admin")
    with Cluster(os.path.join(str(root), "cluster"), workers=1, slots=2, datanodes=2, dead_timeout=5.0,
                 speculation=False, service=True, token_file=token_file) as cluster:
        yield ServiceHandle(cluster.service_url, admin, token_file, cluster)
