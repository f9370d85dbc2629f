"""What a connection may do, decided from the principal its key proved (see ``principals``).

``peer`` is what ``transport.recv_peer`` returned: a ``Principal`` on a keyed
socket, or None on an unkeyed (loopback-only) one, where every local process
is trusted as before keys existed.  ``LEGACY`` is the one principal of the
shared-secret mode (``MAPRED_SECRET``): every holder of the secret is it, so
it may act in every role -- the reason per-principal keys replace it.
"""
from __future__ import annotations

from mapred.security.principals import Principal, Role

LEGACY = Principal("cluster", Role.ADMIN)


def may_act_as(peer: Principal | None, role: Role) -> bool:
    """Whether ``peer`` may act as a node of ``role`` (register as a worker or DataNode)."""
    return peer is None or peer == LEGACY or peer.role is role


def may_submit(peer: Principal | None) -> bool:
    """Only people submit job code (a node key never does)."""
    return peer is None or peer.may_submit()


def may_act_on(peer: Principal | None, owner: str) -> bool:
    """Whether ``peer`` may see, kill or read what ``owner`` submitted."""
    return peer is None or peer == LEGACY or peer.may_act_on(owner)


def name_of(peer: Principal | None) -> str:
    """The owner name recorded for what ``peer`` creates (``local`` on an unkeyed socket)."""
    return peer.name if peer is not None else "local"


def submit_owner(peer: Principal | None, submitter: str) -> str:
    """The owner of a job ``peer`` submits: the service names the HTTP user it acts for."""
    if peer is not None and peer.role is Role.SERVICE and submitter:
        return submitter
    return name_of(peer)
