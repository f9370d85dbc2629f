"""Node states under ``/api/v1``: drain a worker, decommission a DataNode; one vocabulary for both.

``PUT /api/v1/workers/{id}/state {"state": "DECOMMISSIONING"}`` drains a
worker through the master (no new tasks; it finishes its attempts, serves its
map outputs while a running job needs them, then exits DECOMMISSIONED);
``timeout`` retires it after that many seconds anyway.  ``PUT
/api/v1/datanodes/{id}/state`` with ``DECOMMISSIONING`` starts a DataNode's
decommission, with ``ACTIVE`` cancels it.  Both are for admins; an unknown
id is a 404, a state the node cannot be asked for a 400, a node that has
already left a 409.  Asking for the state a node is already in answers the
same again (idempotent).

Workers and DataNodes keep their own words (a worker is ALIVE or LOST, a
DataNode LIVE or DEAD with an HDFS admin state); ``node_state`` maps both to
the one set the page and ``/metrics`` show: ACTIVE, DECOMMISSIONING,
DECOMMISSIONED, and LOST for a node that went silent.
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from mapred.security.principals import Principal
from mapred.service.auth import require_admin
from mapred.service.backend import Backend, backend
from mapred.service.bodies import json_body, json_body_schema
from mapred.service.errors import ApiError, error_responses

router = APIRouter(prefix="/api/v1", tags=["cluster"])
NODE_STATES = ("ACTIVE", "DECOMMISSIONING", "DECOMMISSIONED", "LOST")
NodeId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$",
                             description="the id `mapred job status` / `mapred fs report` shows")]


def worker_state(w: dict) -> str:
    """A worker of the master's list in the shared vocabulary."""
    raw = str(w.get("state") or ("ALIVE" if w.get("alive") else "LOST"))
    return {"ALIVE": "ACTIVE"}.get(raw, raw)


def datanode_state(d: dict) -> str:
    """A DataNode of the NameNode's report in the shared vocabulary (the admin state first)."""
    admin = d.get("admin_state", "IN_SERVICE")
    if admin == "DECOMMISSIONED":
        return "DECOMMISSIONED"
    if d.get("state") != "LIVE":
        return "LOST"
    return "DECOMMISSIONING" if admin == "DECOMMISSION_INPROGRESS" else "ACTIVE"


class WorkerChange(BaseModel):
    state: Literal["DECOMMISSIONING"] = Field(description="a drain; it cannot be undone")
    timeout: float = Field(0.0, ge=0, le=7 * 86400, description="retire after this many seconds anyway (0: never)")


class DatanodeChange(BaseModel):
    state: Literal["DECOMMISSIONING", "ACTIVE"] = Field(description="start a decommission, or cancel it")


class NodeStateAnswer(BaseModel):
    id: str
    state: str = Field(description="ACTIVE, DECOMMISSIONING, DECOMMISSIONED or LOST")
    requested: str
    detail: dict = Field(default_factory=dict)


_ERRORS = error_responses(404, 409, 415)


@router.put("/workers/{worker_id}/state", response_model=NodeStateAnswer, responses=_ERRORS,
            openapi_extra=json_body_schema(WorkerChange))
async def put_worker_state(worker_id: NodeId, request: Request, principal: Principal = Depends(require_admin),
                           b: Backend = Depends(backend)):
    """Drain a worker (admins): ``{"state": "DECOMMISSIONING", "timeout": 0}``."""
    change = await json_body(request, WorkerChange)
    info = await run_in_threadpool(b.master_call, "cluster_info")
    known = {w["worker_id"]: w for w in info["workers"]}
    if worker_id not in known:
        raise ApiError(404, f"no worker {worker_id!r}; the master knows {', '.join(sorted(known)) or 'none'}",
                       "NotFound")
    now = worker_state(known[worker_id])
    if now == "DECOMMISSIONING":
        return {"id": worker_id, "state": now, "requested": change.state}
    if now != "ACTIVE":
        raise ApiError(409, f"worker {worker_id} is {now}: only an ACTIVE worker can be drained", "Conflict")
    got = await run_in_threadpool(b.master_call, "drain", worker_id, change.timeout)
    return {"id": worker_id, "state": worker_state(got), "requested": change.state,
            "detail": {"needed_outputs": got.get("needed_outputs", 0)}}


@router.put("/datanodes/{dnid}/state", response_model=NodeStateAnswer, responses=_ERRORS,
            openapi_extra=json_body_schema(DatanodeChange))
async def put_datanode_state(dnid: NodeId, request: Request, principal: Principal = Depends(require_admin),
                             b: Backend = Depends(backend)):
    """Decommission a DataNode (admins) with ``DECOMMISSIONING``, or put it back with ``ACTIVE``."""
    change = await json_body(request, DatanodeChange)
    store = b.store()
    nodes = {d["dnid"]: d for d in await run_in_threadpool(store.report)}
    if dnid not in nodes:
        raise ApiError(404, f"no DataNode {dnid!r}; the NameNode knows {', '.join(sorted(nodes)) or 'none'}",
                       "NotFound")
    now = datanode_state(nodes[dnid])
    if now == "LOST" and change.state == "DECOMMISSIONING":
        raise ApiError(409, f"DataNode {dnid} is not live; a decommission needs it to serve its copies",
                       "Conflict")
    if now == change.state or (now == "DECOMMISSIONED" and change.state == "DECOMMISSIONING"):
        return {"id": dnid, "state": now, "requested": change.state}
    got = await run_in_threadpool(store.decommission, dnid, change.state == "DECOMMISSIONING")
    node = {**nodes[dnid], "admin_state": got["admin_state"]}
    return {"id": dnid, "state": datanode_state(node), "requested": change.state,
            "detail": {"admin_state": got["admin_state"]}}
