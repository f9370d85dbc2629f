"""``GET /api/v1/cluster``: workers, DataNodes and the store's health in one answer (the page's top half).

Read from the master (workers: slots, memory, running attempts, heartbeat
age; the autoscaler's decisions with their reasons) and the NameNode
(DataNodes: state, capacity, use; fsck summary), each cached for
``status_cache_s``.  Every node carries ``node_state`` (ACTIVE,
DECOMMISSIONING, DECOMMISSIONED, LOST: see ``nodes``).  A component that
cannot be reached is reported as down rather than failing the whole answer.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from mapred.errors import MapredError
from mapred.security.principals import Principal
from mapred.service.auth import current_principal
from mapred.service.backend import Backend, backend
from mapred.service.errors import ApiError
from mapred.service.nodes import datanode_state, worker_state

router = APIRouter(prefix="/api/v1", tags=["cluster"])


class Worker(BaseModel):
    model_config = ConfigDict(extra="allow")
    worker_id: str
    host: str
    slots: int
    alive: bool
    running: int
    node_state: str = Field(description="ACTIVE, DECOMMISSIONING, DECOMMISSIONED or LOST")
    memory: int | None = None
    heartbeat_age_s: float | None = None


class Datanode(BaseModel):
    model_config = ConfigDict(extra="allow")
    dnid: str
    host: str
    state: str
    node_state: str = Field(description="ACTIVE, DECOMMISSIONING, DECOMMISSIONED or LOST")
    capacity: int
    used: int
    remaining: int
    blocks: int
    last_heartbeat_s: float | None = None


class ClusterView(BaseModel):
    master: str = Field(description="up, down, or none (not configured)")
    namenode: str
    workers: list[Worker]
    datanodes: list[Datanode]
    fsck: dict = Field(description="the NameNode's fsck summary of /")
    jobs: dict[str, int] = Field(description="jobs this principal may see, by state")
    scaling: dict = Field(default_factory=dict, description="the autoscaler's decisions (each with its "
                                                            "reason), totals by action, and its policy")


@router.get("/cluster", response_model=ClusterView)
def cluster(principal: Principal = Depends(current_principal), b: Backend = Depends(backend)):
    """The cluster as the status page shows it."""
    view = {"master": "none", "namenode": "none", "workers": [], "datanodes": [], "fsck": {}, "jobs": {},
            "scaling": {}}
    if b.settings.master:
        try:
            info = b.cluster_info()
            view["master"] = "up"
            view["workers"] = [dict(w, node_state=worker_state(w)) for w in info["workers"]]
            view["scaling"] = info.get("scaling", {}) if principal.may_act_on("") else {}
            for j in info["jobs"]:
                if principal.may_act_on(j.get("submitter", "")):
                    view["jobs"][j["state"]] = view["jobs"].get(j["state"], 0) + 1
        except (ApiError, MapredError):
            view["master"] = "down"
    if b.settings.namenode:
        try:
            nodes, fsck = b.cached("store_facts", lambda: (b.store().report(), b.store().fsck("/")))
            view["namenode"] = "up"
            view["datanodes"] = [dict(d, node_state=datanode_state(d)) for d in nodes]
            view["fsck"] = {k: v for k, v in fsck.items() if k != "problems"}
        except (ApiError, MapredError):
            view["namenode"] = "down"
    return view
