"""Principals and roles: the one vocabulary every daemon uses for "who may do what".

A principal is a name with one role.  Roles are str-enums so msgpack and JSON
see plain strings.  What each role may do is decided here, once, so the
master, the NameNode and the HTTP service cannot disagree about it.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(str, Enum):
    """What a principal is: a person (``admin``, ``user``), a node (``worker``, ``datanode``), or the
    HTTP service (``service``), which submits and reads on behalf of the users it authenticated."""

    ADMIN = "admin"
    USER = "user"
    WORKER = "worker"
    DATANODE = "datanode"
    SERVICE = "service"       # mapred serve: acts for the HTTP user it authenticated

    @property
    def is_person(self) -> bool:
        """People submit jobs and own files; nodes only serve their role."""
        return self in (Role.ADMIN, Role.USER)


@dataclass(frozen=True)
class Principal:
    """An authenticated identity: ``name`` (e.g. ``alice``, ``worker-3``) and its :class:`Role`."""

    name: str
    role: Role

    def may_submit(self) -> bool:
        """Only people submit job code (the service on a person's behalf); a node key never does."""
        return self.role.is_person or self.role is Role.SERVICE

    def may_act_on(self, owner: str) -> bool:
        """Whether this principal may see, kill or read something owned by ``owner``.

        The service sees every job: it is the proxy in front of many users and
        answers each HTTP user only about their own (``service.access``), as
        Hadoop's proxy users do; it never registers nodes or acts as an admin
        on the store.
        """
        return (self.role in (Role.ADMIN, Role.SERVICE)
                or (self.role is Role.USER and self.name == owner))
