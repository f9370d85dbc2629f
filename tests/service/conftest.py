"""The ``service`` fixture: a real cluster with a block store and ``mapred serve`` in front of it.

Session scope: NameNode, 2 DataNodes, a master, one worker and the HTTP
service as processes on loopback, killed by pid at the end whatever happened.
It yields a ``servicekit.ServiceHandle`` (``url``, ``admin_token``,
``token(user, role)``, ``client(token)``, ``store_uri``, ``cluster``).  Other
service work (model serving, cleanup) reuses it: request ``service`` in a test.
"""
from __future__ import annotations

import os

import pytest
from servicekit import BODY_TIMEOUT, MAX_BODY, MAX_IN_FLIGHT, ServiceHandle

from mapred.runtime.procs import Cluster
from mapred.service.tokens import TokenStore


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    """The shared cluster + service (see the module docstring)."""
    root = tmp_path_factory.mktemp("service")
    token_file = os.path.join(str(root), "tokens.json")
    admin, _ = TokenStore(token_file).create("root-admin", "admin")
    limits = {"MAPRED_SERVICE_BODY_TIMEOUT": str(BODY_TIMEOUT), "MAPRED_SERVICE_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
              "MAPRED_SERVICE_MAX_BODY": str(MAX_BODY)}
    with Cluster(os.path.join(str(root), "cluster"), workers=1, slots=2, datanodes=2, dead_timeout=5.0,
                 speculation=False, service=True, token_file=token_file, block_size=4 << 20,
                 env=limits) as cluster:
        yield ServiceHandle(cluster.service_url, admin, token_file, cluster)

