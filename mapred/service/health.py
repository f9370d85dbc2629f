"""Health probes, the only routes that need no token.

``/healthz``: the process is up.  ``/readyz``: it can reach the NameNode and
the master it was given (503 naming what is down otherwise).
"""
from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from mapred.errors import MapredError
from mapred.service.backend import Backend, backend
from mapred.service.errors import ApiError
from mapred.version import __version__

router = APIRouter(tags=["health"])
_STATUS = {"type": "object", "properties": {"status": {"type": "string"}, "version": {"type": "string"},
                                            "down": {"type": "array", "items": {"type": "string"}}}}


@router.get("/healthz", summary="liveness probe", responses={200: {"content": {"application/json": {"schema": _STATUS}}}})
def healthz() -> dict:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="readiness probe",
            responses={200: {"content": {"application/json": {"schema": _STATUS}}},
                       503: {"description": "a cluster component is unreachable",
                             "content": {"application/json": {"schema": _STATUS}}}})
def readyz(b: Backend = Depends(backend)):
    down = []
    if b.settings.namenode:
        try:
            b.store().stat("/")
        except (MapredError, ApiError):
            down.append("namenode")
    if b.settings.master:
        try:
            b.master_call("cluster_info")
        except (MapredError, ApiError):
            down.append("master")
    body = {"status": "ok" if not down else "unavailable", "version": __version__, "down": down}
    return JSONResponse(body, status_code=503 if down else 200)
