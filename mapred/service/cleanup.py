"""Cleanup under ``/api/v1/cleanup``: the NameNode's retention rules, runs of them, and their metrics.

``GET /rules`` shows the rules (any person); ``PUT /rules`` replaces them
(admins): the document is the rules file's, as JSON (``{"max_deletions_per_run",
"interval", "rule": [...]}``, docs/cleanup.md), validated here and again by
the NameNode, which saves and installs it; a bad one is a 400 naming the rule
and the key.  ``POST /runs?dry_run=true|false`` (admins) runs the rules now and
answers the run's report: every action with its rule and reason, the pins
honoured, freed bytes and files in all and per rule.  The NameNode does a run
in slices between its other requests, so a long one answers 202 with the
run's address (``GET /runs/{run}``) instead of holding the request.
"""
from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, RootModel

from mapred.errors import StorageError
from mapred.security.principals import Principal
from mapred.service.auth import current_principal, require_admin
from mapred.service.backend import Backend, backend
from mapred.service.bodies import json_body, json_body_schema
from mapred.service.errors import ApiError, error_responses
from mapred.storage import cleanup

router = APIRouter(prefix="/api/v1/cleanup", tags=["cleanup"])
RUN_WAIT_S = 30.0          # how long POST /runs waits for the report before answering 202
RunPath = Annotated[int, Path(ge=1, le=1 << 53, description="a run id, as POST /runs answered")]


class RulesDocument(RootModel[dict[str, Any]]):
    """The rules file as JSON: ``{"max_deletions_per_run": N, "interval": "10m", "rule": [...]}``."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    path: str = Field(description="a glob: * and ? within a component, ** across components")


class Rules(BaseModel):
    max_deletions_per_run: int
    interval: float = Field(description="seconds between the NameNode's own runs")
    rules: list[Rule]


class RunReport(BaseModel):
    model_config = ConfigDict(extra="allow")
    run: int
    dry_run: bool
    actions: list[dict] = Field(description="each: action, path, rule, reason, bytes, files, trash")
    honoured: list[dict] = Field(description="deletions a pin prevented: path, rule, pin")
    freed_bytes: int
    freed_files: int
    by_rule: dict[str, dict[str, int]] = Field(description="per rule: deletions, aborts, freed_bytes, "
                                                           "freed_files, pins_honoured")
    capped: int = Field(description="actions left for the next run by max_deletions_per_run")
    failed: list[dict]
    skipped: list[dict] = Field(description="actions dropped because their path changed since the snapshot")


class RunState(BaseModel):
    model_config = ConfigDict(extra="allow")
    run: int
    dry_run: bool
    state: str = Field(description="walking, planning, applying, done or failed")
    report: RunReport | None = None
    error: str | None = None


@router.get("/rules", response_model=Rules)
def get_rules(principal: Principal = Depends(current_principal), b: Backend = Depends(backend)):
    """The rules the NameNode runs now (none: an empty list)."""
    return b.store().cleanup_rules()


@router.put("/rules", response_model=Rules, responses=error_responses(413, 415),
            openapi_extra=json_body_schema(RulesDocument))
async def put_rules(request: Request, principal: Principal = Depends(require_admin),
                    b: Backend = Depends(backend)):
    """Replace the rules (admins): validated, saved by the NameNode to its rules file, in force at once."""
    doc = (await json_body(request, RulesDocument)).root
    cleanup.parse_rules(doc)     # a ConfigError naming the rule and key is a 400, before the NameNode
    return await run_in_threadpool(b.store().cleanup_rules, doc)


@router.post("/runs", response_model=RunReport,
             responses={202: {"description": "the run is still going: poll its Location",
                              "model": RunState}, **error_responses(503)})
async def post_run(dry_run: Annotated[bool, Query(description="list what a run would do, change nothing")] = False,
                   principal: Principal = Depends(require_admin), b: Backend = Depends(backend)):
    """Run the rules now (admins); the report, or 202 and the run's address if it takes longer."""
    store = b.store()
    started = await run_in_threadpool(store.cleanup_run_start, dry_run)
    run = started["run"]
    deadline = time.monotonic() + RUN_WAIT_S
    pause = 0.01
    while True:
        st = await run_in_threadpool(store.cleanup_run_status, run)
        if st["state"] in ("done", "failed") or time.monotonic() > deadline:
            break
        await asyncio.sleep(pause)
        pause = min(0.25, pause * 2)
    if st["state"] == "failed":
        raise ApiError(503, f"cleanup run {run} failed: {st.get('error', '')}", "CleanupFailed",
                       headers={"Retry-After": "5"})
    if st["state"] != "done":
        return JSONResponse(st, status_code=202, headers={"Location": f"/api/v1/cleanup/runs/{run}"})
    return st["report"]


@router.get("/runs/{run}", response_model=RunState, responses=error_responses(404))
def get_run(run: RunPath, principal: Principal = Depends(require_admin), b: Backend = Depends(backend)):
    """One run's state and, once done, its report (the NameNode keeps the last 32)."""
    try:
        return b.store().cleanup_run_status(run)
    except StorageError as exc:
        if "no cleanup run" in str(exc):
            raise ApiError(404, str(exc), "NotFound") from None
        raise


@router.get("/status")
def get_status(principal: Principal = Depends(current_principal), b: Backend = Depends(backend)):
    """The NameNode's cleanup metrics: freed bytes and files by rule, runs, pins honoured, the trash."""
    return b.store().cleanup_status()
