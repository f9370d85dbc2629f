"""Jobs under ``/api/v1`` (Spark's monitoring API is the model): list, one job, tasks, logs, kill.

A principal sees only the jobs it may act on (its own; an admin sees all):
another user's job is a 403 naming it.  Jobs are never submitted over HTTP —
job code comes through the Python API and the CLI; here a job can only be
looked at or killed.  A finished job's status never changes, so it is cached.
"""
from __future__ import annotations

import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from mapred.errors import ConfigError
from mapred.security.principals import Principal
from mapred.service.auth import check_owner, current_principal
from mapred.service.backend import Backend, backend
from mapred.service.bodies import json_body, json_body_schema
from mapred.service.errors import ApiError, error_responses
from mapred.types import JobState

router = APIRouter(prefix="/api/v1", tags=["jobs"])
JobIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,64}$", description="a job id, as `mapred job list` shows")]
_finished: dict[str, dict] = {}
_finished_lock = threading.Lock()
FINISHED_CACHE = 4096


# -- response models (the OpenAPI schema is made from these) ------------------------------------

class Phase(BaseModel):
    """Progress of one phase (map or reduce) of a job."""
    done: int = Field(description="tasks of this phase that succeeded")
    total: int
    fraction: float = Field(description="0..1, running attempts' progress included where known")


class JobSummary(BaseModel):
    """One job in a listing."""
    model_config = ConfigDict(extra="allow")
    job_id: str
    name: str
    state: JobState
    submitter: str
    submitted: float = Field(description="seconds since the epoch")
    finished: float | None
    duration_s: float | None
    output: str
    phases: dict[str, Phase]


class JobDetail(JobSummary):
    """One job with its counters, error and output format."""
    counters: dict[str, dict[str, int | float]] = {}
    error: dict = Field(default_factory=dict, description="type, message, task, attempt, offset, traceback")
    reducers: int | None = None
    output_format: str | None = None


class JobList(BaseModel):
    """A page of jobs."""
    jobs: list[JobSummary]
    next: str | None = Field(description="pass as `after` for the next page; null at the end")


class Attempt(BaseModel):
    """One attempt of a task."""
    model_config = ConfigDict(extra="allow")
    attempt: str
    state: str
    worker: str
    host: str
    speculative: bool = False
    seconds: float | None = None
    progress: float | None = None
    error: dict = {}


class Task(BaseModel):
    """One task and its attempts."""
    task: str
    state: str
    committed: str
    hosts: list[str]
    attempts: list[Attempt]


class TaskList(BaseModel):
    """A job's tasks."""
    job_id: str
    tasks: list[Task]


class LogLines(BaseModel):
    """A job's log lines, or one task's."""
    job_id: str
    lines: list[str]


class StateChange(BaseModel):
    """A client's request to change a job's state (only KILLED)."""
    model_config = ConfigDict(extra="forbid")
    state: Literal["KILLED"] = Field(description="the only state a client may ask for")


class StateAnswer(BaseModel):
    """The job's state after a state change was asked for."""
    job_id: str
    state: JobState
    requested: Literal["KILLED"]


# -- reading jobs from the master ----------------------------------------------------------------

def job_status(b: Backend, job_id: str, detail: bool = False) -> dict:
    """The master's status of ``job_id`` (404 if unknown); finished jobs come from a cache."""
    key = f"{job_id}:{int(detail)}"
    with _finished_lock:
        hit = _finished.get(key)
    if hit is not None:
        return hit
    try:
        st = b.master_call("status", job_id, detail)
    except ConfigError:            # the client's form of the master's UnknownJob answer
        raise ApiError(404, f"no job {job_id!r}", "NoSuchJob") from None
    if JobState(st["state"]).finished:
        with _finished_lock:
            if len(_finished) >= FINISHED_CACHE:
                _finished.pop(next(iter(_finished)))
            _finished[key] = st
    return st


def visible_job(b: Backend, principal: Principal, job_id: str, detail: bool = False) -> dict:
    """``job_status`` for a job ``principal`` may see; 403 for another user's job."""
    st = job_status(b, job_id, detail)
    check_owner(principal, st.get("submitter", ""), f"job {job_id}")
    return st


def phases(st: dict) -> dict:
    """Per-phase progress: from tasks and their running attempts when known, else from done counts."""
    p = st.get("progress", {})
    out = {}
    for phase, kind in (("map", "m"), ("reduce", "r")):
        total, done = int(p.get(phase + "s", 0)), int(p.get(phase + "s_done", 0))
        frac = done
        if "tasks" in st:
            frac = 0.0
            for t in st["tasks"]:
                if f"-{kind}-" not in t["task"]:
                    continue
                if t["state"] == "SUCCEEDED":
                    frac += 1.0
                else:
                    frac += max([float(a.get("progress") or 0.0) for a in t["attempts"] if a["state"] == "RUNNING"]
                                or [0.0])
        out[phase] = {"done": done, "total": total, "fraction": round(frac / total, 4) if total else 1.0}
    return out


def summary(st: dict) -> dict:
    """The listing shape of a master status dict."""
    finished = st.get("finished")
    submitted = float(st.get("submitted") or 0.0)
    return {"job_id": st["job_id"], "name": st.get("name", ""), "state": st["state"],
            "submitter": st.get("submitter", ""), "submitted": submitted, "finished": finished,
            "duration_s": round(finished - submitted, 3) if finished else None,
            "output": st.get("output", ""), "phases": phases(st)}


def detail(st: dict) -> dict:
    """The detail shape of a master status dict."""
    return {**summary(st), "counters": st.get("counters", {}), "error": st.get("error") or {},
            "reducers": st.get("reducers"), "output_format": st.get("output_format")}


# -- routes ----------------------------------------------------------------------------------------

StatusFilter = Annotated[list[JobState] | None, Query(description="only jobs in these states (repeatable)")]


@router.get("/jobs", response_model=JobList, responses=error_responses(400))
def list_jobs(status: StatusFilter = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              after: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9]{1,64}$",
                                                 description="the last job id of the previous page")] = None,
              principal: Principal = Depends(current_principal), b: Backend = Depends(backend)):
    """Jobs this principal may see, oldest first, ``limit`` at a time."""
    jobs = [j for j in b.cluster_info()["jobs"] if principal.may_act_on(j.get("submitter", ""))]
    jobs.sort(key=lambda j: (j.get("submitted") or 0.0, j["job_id"]))
    if after is not None:
        ids = [j["job_id"] for j in jobs]
        if after not in ids:
            raise ApiError(400, f"after={after!r} is not a job this principal can see", "BadCursor")
        jobs = jobs[ids.index(after) + 1:]
    if status:
        wanted = {s.value for s in status}
        jobs = [j for j in jobs if j["state"] in wanted]
    page = jobs[:limit]
    return {"jobs": [summary(j) for j in page], "next": page[-1]["job_id"] if len(jobs) > limit else None}


@router.get("/jobs/{job_id}", response_model=JobDetail, responses=error_responses(404))
def get_job(job_id: JobIdPath, principal: Principal = Depends(current_principal), b: Backend = Depends(backend)):
    """State, per-phase progress, counters, timings, submitter and the error (with traceback) of one job."""
    return detail(visible_job(b, principal, job_id, detail=True))


@router.get("/jobs/{job_id}/tasks", response_model=TaskList, responses=error_responses(404))
def get_tasks(job_id: JobIdPath, principal: Principal = Depends(current_principal), b: Backend = Depends(backend)):
    """Every task and attempt: where it ran, how it ended, its error with record offset and traceback."""
    st = visible_job(b, principal, job_id, detail=True)
    return {"job_id": job_id, "tasks": st.get("tasks", [])}


@router.get("/jobs/{job_id}/logs", response_model=LogLines, responses=error_responses(404))
def get_logs(job_id: JobIdPath, task: Annotated[str, Query(max_length=200, description="only lines naming this")] = "",
             principal: Principal = Depends(current_principal), b: Backend = Depends(backend)):
    """The master's log of the job: assignments, failures with tracebacks, commits, kills."""
    visible_job(b, principal, job_id)
    return {"job_id": job_id, "lines": b.master_call("logs", job_id, task)}


@router.put("/jobs/{job_id}/state", response_model=StateAnswer, responses=error_responses(404, 409, 415),
            openapi_extra=json_body_schema(StateChange))
async def put_state(job_id: JobIdPath, request: Request, principal: Principal = Depends(current_principal),
                    b: Backend = Depends(backend)):
    """Ask for ``{"state": "KILLED"}``: idempotent — killing a killed job answers the same."""
    change = await json_body(request, StateChange)
    st = await run_in_threadpool(visible_job, b, principal, job_id)
    state = JobState(st["state"])
    if state.finished and state is not JobState.KILLED:
        raise ApiError(409, f"job {job_id} already finished as {state.value}; it cannot be killed", "Conflict")
    if not state.finished:
        await run_in_threadpool(b.master_call, "kill", job_id, f"killed by {principal.name} over HTTP")
    return {"job_id": job_id, "state": state.value, "requested": change.state}
