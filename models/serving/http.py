"""The model routes of ``mapred serve``: Open Inference Protocol v2 under ``/v2``, the registry under
``/api/v1/models``.  A router module of the service (``mapred.service.app.ROUTERS``).

``/v2`` speaks the protocol as KServe, Triton and MLServer do, so their
clients work unchanged: errors there are ``{"error": "..."}``; the registry
routes answer errors in the service's own shape.  Every route but the two
health probes needs a bearer token; reading and predicting need any person's
token, changing aliases and starting jobs a user's or an admin's, removing a
version an admin's.  Registry calls block on the store, so those routes are
plain functions (run in the thread pool); inference is async and does no I/O
once a version is loaded.
"""
from __future__ import annotations

import logging
import os
import threading

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from mapred.service.auth import current_principal, forbidden
from mapred.service.errors import ApiError, error_responses

from mapred.errors import MapredError, ModelError, OutputExistsError
from mapred.security.principals import Principal, Role
from mapred.version import __version__

from ..registry import Conflict, NotFound, Registry, default_root
from .engine import ModelServer
from .evaluations import EvaluationRuns
from .errors import InferError

log = logging.getLogger("mapred.serving.http")
router = APIRouter()
MAX_INFER_BYTES = int(os.environ.get("MAPRED_MAX_INFER_BYTES", str(64 << 20)))

# the protocol's {"error": "..."}; a refusal by the service's own limits or auth keeps the service's shape
_OIP_ERROR = {"type": "object", "required": ["error"],
              "properties": {"error": {"anyOf": [{"type": "string"}, {"type": "object"}]}}}
_TENSOR = {"type": "object", "required": ["name", "shape", "datatype"],
           "properties": {"name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
                          "datatype": {"type": "string"}, "parameters": {"type": "object"},
                          "data": {"type": "array"}}}
_INFER_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["inputs"],
    "properties": {"id": {"type": "string"}, "parameters": {"type": "object"},
                   "inputs": {"type": "array", "items": _TENSOR},
                   "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                          "properties": {"name": {"type": "string"},
                                                                         "parameters": {"type": "object"}}}}}}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
_ANY = {"type": "object"}
_LIST = {"type": "array", "items": {"type": "object"}}


def _oip_responses(*statuses) -> dict:
    return {s: {"description": "an Open Inference Protocol error",
                "content": {"application/json": {"schema": _OIP_ERROR}}} for s in statuses}


def _ok(schema=None) -> dict:
    return {200: {"content": {"application/json": {"schema": schema or _ANY}}}}


def setup(app) -> None:
    """Make the app's ``ModelServer`` over the cluster's registry and start its alias poller."""
    root = os.environ.get("MAPRED_REGISTRY") or ""
    store_uri = getattr(app.state.backend, "store_uri", "")
    if not root:
        root = store_uri + "/models" if store_uri else default_root()
    poll = float(os.environ.get("MAPRED_MODEL_POLL_S", "1.0"))
    app.state.model_server = ModelServer(Registry(root), poll_interval=poll,
                                         metrics_registry=app.state.metrics.registry).start()
    master = getattr(getattr(app.state.backend, "settings", None), "master", "") or ""
    app.state.evaluation_runs = EvaluationRuns(app.state.model_server.registry, master)
    if master:   # runs a service that died left RUNNING are taken up again (their state is in the registry)
        threading.Thread(target=_resume_quietly, args=(app.state.evaluation_runs,), daemon=True,
                         name="resume-evaluations").start()
    else:
        app.state.evaluation_runs.resumed.set()
    app.router.on_shutdown.append(app.state.model_server.close)


def _resume_quietly(runs) -> None:
    try:
        runs.resume()
    except Exception:   # a store hiccup at start must not take the service down; the runs stay RUNNING
        log.exception("could not resume evaluation runs")
    finally:
        runs.resumed.set()


def server(request: Request) -> ModelServer:
    return request.app.state.model_server


def _oip_error(exc: InferError) -> JSONResponse:
    headers = {"Retry-After": str(int(max(1, exc.retry_after)))} if exc.retry_after else None
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


def _may_change(principal: Principal) -> None:
    if principal.role not in (Role.ADMIN, Role.USER):
        raise forbidden(f"{principal.name} ({principal.role.value}) may not change models")


def _api(fn, *args, **kwargs):
    """A registry call with its errors as the service's answers (404, 409, 400)."""
    try:
        return fn(*args, **kwargs)
    except NotFound as exc:
        raise ApiError(404, str(exc), "NotFound") from None
    except Conflict as exc:
        raise ApiError(409, str(exc), "Conflict") from None
    except ModelError as exc:
        raise ApiError(400, str(exc), "BadRequest") from None


# ------------------------------------------------------------------ Open Inference Protocol v2


@router.get("/v2/health/live", tags=["inference"], summary="OIP liveness",
            responses=_ok({"type": "object", "properties": {"live": {"type": "boolean"}}}))
def live() -> dict:
    return {"live": True}


@router.get("/v2/health/ready", tags=["inference"], summary="OIP readiness: the registry can be read and the served set is loaded",
            responses={**_ok({"type": "object", "properties": {"ready": {"type": "boolean"}}}),
                       **_oip_responses(503)})
def ready(request: Request):
    if not (server(request).restored.is_set() and request.app.state.evaluation_runs.resumed.is_set()):
        return JSONResponse({"ready": False, "error": "loading the models this service served before it "
                                                      "restarted"}, status_code=503)
    try:
        server(request).registry.names()
    except (MapredError, OSError) as exc:
        return JSONResponse({"ready": False, "error": f"the model registry cannot be read: {exc}"},
                            status_code=503)
    return {"ready": True}


@router.get("/v2", tags=["inference"], summary="OIP server metadata", responses=_ok())
def server_metadata(principal: Principal = Depends(current_principal)) -> dict:
    return {"name": "mapred", "version": __version__, "extensions": ["binary_tensor_data"]}


async def _metadata(request, name, version):
    try:
        return await server(request).metadata(name, version)
    except InferError as exc:
        return _oip_error(exc)


@router.get("/v2/models/{name}", tags=["inference"], summary="model metadata (its champion)",
            responses={**_ok(), **_oip_responses(400, 404, 503)})
async def model_metadata(name: str, request: Request, principal: Principal = Depends(current_principal)):
    return await _metadata(request, name, None)


@router.get("/v2/models/{name}/versions/{version}", tags=["inference"],
            summary="version metadata (a number or an alias)", responses={**_ok(), **_oip_responses(400, 404, 503)})
async def version_metadata(name: str, version: str, request: Request,
                           principal: Principal = Depends(current_principal)):
    return await _metadata(request, name, version)


async def _ready(request, name, version):
    try:
        lv = await server(request).resolve(name, version)
    except InferError as exc:
        return _oip_error(exc)
    return {"name": name, "version": str(lv.version), "ready": True}


@router.get("/v2/models/{name}/ready", tags=["inference"], summary="model readiness",
            responses={**_ok(), **_oip_responses(400, 404, 503)})
async def model_ready(name: str, request: Request, principal: Principal = Depends(current_principal)):
    return await _ready(request, name, None)


@router.get("/v2/models/{name}/versions/{version}/ready", tags=["inference"], summary="version readiness",
            responses={**_ok(), **_oip_responses(400, 404, 503)})
async def version_ready(name: str, version: str, request: Request,
                        principal: Principal = Depends(current_principal)):
    return await _ready(request, name, version)


async def _infer(request: Request, name: str, version, explain: bool):
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_INFER_BYTES:
        return JSONResponse({"error": f"the request body has {length} bytes; the limit is {MAX_INFER_BYTES}"},
                            status_code=413)
    body = await request.body()
    if len(body) > MAX_INFER_BYTES:
        return JSONResponse({"error": f"the request body is over the {MAX_INFER_BYTES}-byte limit"},
                            status_code=413)
    try:
        payload, head_len, _ = await server(request).infer(
            name, version, body, request.headers.get("inference-header-content-length"), explain=explain)
    except InferError as exc:
        return _oip_error(exc)
    if head_len is None:
        return Response(payload, media_type="application/json")
    return Response(payload, media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(head_len)})


_INFER_RESPONSES = {**_ok({"type": "object", "properties": {
    "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
    "outputs": {"type": "array", "items": _TENSOR}}}), **_oip_responses(400, 404, 413, 503)}


@router.post("/v2/models/{name}/infer", tags=["inference"], summary="predict with the champion",
             openapi_extra=_INFER_BODY, responses=_INFER_RESPONSES)
async def infer(name: str, request: Request, explain: bool = Query(False, description="add contributions"),
                principal: Principal = Depends(current_principal)):
    return await _infer(request, name, None, explain)


@router.post("/v2/models/{name}/versions/{version}/infer", tags=["inference"],
             summary="predict with a version (a number or an alias)", openapi_extra=_INFER_BODY,
             responses=_INFER_RESPONSES)
async def infer_version(name: str, version: str, request: Request,
                        explain: bool = Query(False, description="add contributions"),
                        principal: Principal = Depends(current_principal)):
    return await _infer(request, name, version, explain)


# ------------------------------------------------------------------ the registry over REST

_ERRS = error_responses(404, 409)


def _summary(reg: Registry, name: str) -> dict:
    nums = reg.version_numbers(name)
    return {"name": name, "versions": len(nums), "latest": nums[-1] if nums else None,
            "aliases": {a: st.version for a, st in reg.aliases(name).items()}}


@router.get("/api/v1/models", tags=["models"], summary="registered models", responses=_ok(_LIST))
def list_models(request: Request, principal: Principal = Depends(current_principal)) -> list:
    reg = server(request).registry
    return [_summary(reg, n) for n in _api(reg.names)]


@router.get("/api/v1/models/{name}", tags=["models"], summary="a model: versions, aliases, what is served",
            responses={**_ok(), **_ERRS})
def show_model(name: str, request: Request, principal: Principal = Depends(current_principal)) -> dict:
    srv = server(request)
    versions = _api(srv.registry.versions, name)
    return {**_summary(srv.registry, name), "model_versions": [v.to_dict() for v in versions],
            "serving": srv.status(name), "serving_options": srv.registry.serving_options(name)}


@router.get("/api/v1/models/{name}/versions", tags=["models"], summary="every version of a model",
            responses={**_ok(_LIST), **_ERRS})
def list_versions(name: str, request: Request, principal: Principal = Depends(current_principal)) -> list:
    return [v.to_dict() for v in _api(server(request).registry.versions, name)]


@router.get("/api/v1/models/{name}/versions/{version}", tags=["models"], summary="one version in full",
            responses={**_ok(), **_ERRS})
def show_version(name: str, version: int, request: Request,
                 principal: Principal = Depends(current_principal)) -> dict:
    return _api(server(request).registry.get, name, version).to_dict()


@router.delete("/api/v1/models/{name}/versions/{version}", tags=["models"],
               summary="remove a version (409 while an alias points at it)", responses={**_ok(), **_ERRS})
def remove_version(name: str, version: int, request: Request,
                   principal: Principal = Depends(current_principal)) -> dict:
    if principal.role is not Role.ADMIN:
        raise forbidden(f"{principal.name} is not an admin; only admins remove model versions")
    _api(server(request).registry.remove, name, version)
    return {"removed": f"{name}/{version}"}


@router.get("/api/v1/models/{name}/aliases", tags=["models"], summary="a model's aliases",
            responses={**_ok(), **_ERRS})
def list_aliases(name: str, request: Request, principal: Principal = Depends(current_principal)) -> dict:
    reg = server(request).registry
    _api(reg.versions, name)
    return {a: st.to_dict() for a, st in _api(reg.aliases, name).items()}


def _after_move(request: Request, name: str, st) -> dict:
    status = server(request).refresh(name)   # load beside, switch, drain: before we answer
    return {**st.to_dict(), "serving": status}


@router.put("/api/v1/models/{name}/aliases/{alias}", tags=["models"],
            summary="point an alias at a version (atomic; the old target becomes `previous`)",
            responses={**_ok(), **_ERRS})
def move_alias(name: str, alias: str, request: Request,
               body: dict = Body(..., examples=[{"version": 2}]),
               principal: Principal = Depends(current_principal)) -> dict:
    _may_change(principal)
    version = body.get("version") if isinstance(body, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise ApiError(400, "the body must be {\"version\": N} with N a version number", "BadRequest")
    st = _api(server(request).registry.set_alias, name, alias, version, user=principal.name)
    return _after_move(request, name, st)


@router.post("/api/v1/models/{name}/aliases/{alias}/rollback", tags=["models"],
             summary="point an alias back at its previous version", responses={**_ok(), **_ERRS})
def rollback_alias(name: str, alias: str, request: Request,
                   principal: Principal = Depends(current_principal)) -> dict:
    _may_change(principal)
    st = _api(server(request).registry.rollback, name, alias, user=principal.name)
    return _after_move(request, name, st)


@router.get("/api/v1/models/{name}/evaluations", tags=["models"],
            summary="metrics of every version side by side", responses={**_ok(_LIST), **_ERRS})
def evaluations(name: str, request: Request, principal: Principal = Depends(current_principal)) -> list:
    return [{"version": v.version, "aliases": v.aliases, "registered_at": v.registered_at,
             "metrics": {k: m for k, m in v.metrics.items() if k != "history"},
             "evaluations": v.evaluations}
            for v in _api(server(request).registry.versions, name)]


# ------------------------------------------------------------------ jobs: batch prediction, evaluation


def _store_path(request: Request, principal: Principal, path, what: str, write: bool) -> str:
    """A path from the request as an ``mrfs://`` URI of this cluster's store, checked for access."""
    from mapred.service import access
    store = request.app.state.backend.store_uri
    if not store:
        raise ApiError(503, "this service was started without --namenode: no block store", "Unavailable")
    if not isinstance(path, str) or not path:
        raise ApiError(400, f"{what} must be a path in the block store, e.g. /user/me/data", "BadRequest")
    if path.startswith("mrfs://"):
        if not path.startswith(store + "/"):
            raise ApiError(400, f"{what} {path} is not in this cluster's store ({store})", "BadRequest")
        path = path[len(store):]
    if not path.startswith("/") or "\x00" in path or any(p in (".", "..") for p in path.split("/")):
        raise ApiError(400, f"{what} {path!r} must be an absolute store path without '.' or '..'", "BadRequest")
    allowed = access.may_write(principal, path) if write else access.may_read(principal, path)
    if not allowed:
        raise forbidden(f"{principal.name} may not {'write' if write else 'read'} {path}")
    return store + path


def _ref(name: str, body: dict) -> str:
    if body.get("version") is not None:
        return f"models:/{name}/{int(body['version'])}"
    return f"models:/{name}@{body.get('alias') or 'champion'}"


def _batch_options(body: dict) -> dict:
    """``input_format``, ``output_format`` (strings), ``columns``, ``keep`` (lists of field names) from a body."""
    out = {}
    for key in ("input_format", "output_format"):
        if body.get(key) is not None:
            if not isinstance(body[key], str):
                raise ApiError(400, f"{key} must be a format name, got {body[key]!r}", "BadRequest")
            out[key] = body[key]
    for key in ("columns", "keep"):
        if body.get(key) is not None:
            v = body[key]
            if not isinstance(v, list) or not v or not all(isinstance(c, str) and c for c in v):
                raise ApiError(400, f"{key} must be a non-empty list of field names, got {v!r}", "BadRequest")
            out[key] = v
    return out


@router.post("/api/v1/models/{name}/batch-predict", tags=["models"], status_code=202,
             summary="batch prediction as a map-only job (202 + the job's link)",
             responses={202: {"content": {"application/json": {"schema": _ANY}}}, **_ERRS})
def batch_predict(name: str, request: Request,
                  body: dict = Body(..., examples=[{"input": "/user/me/X", "output": "/user/me/pred"},
                                                   {"input": "/user/me/rows.parquet", "output": "/user/me/pred",
                                                    "columns": ["a", "b"], "keep": ["id"]}]),
                  principal: Principal = Depends(current_principal)):
    _may_change(principal)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be an object {input, output[, version | alias, overwrite, "
                           "input_format, output_format, columns, keep]}")
    src = _store_path(request, principal, body.get("input"), "input", write=False)
    dst = _store_path(request, principal, body.get("output"), "output", write=True)
    from .batch import prepare
    reg = server(request).registry
    ref = _ref(name, body)
    job, inputs, info = _api(prepare, ref, src, reg.root, **_batch_options(body))
    master = request.app.state.backend.settings.master
    if not master:
        raise ApiError(503, "this service was started without --master: no compute cluster", "Unavailable")
    import mapred
    try:
        with mapred.connect(master, user=principal.name) as cluster:   # the job is the caller's own
            handle = cluster.submit(job, inputs, dst, overwrite=bool(body.get("overwrite")))
    except OutputExistsError as exc:
        raise ApiError(409, f"{exc} (pass \"overwrite\": true to replace it)", "Conflict") from None
    job_id = handle.job_id
    return JSONResponse({"job_id": job_id, "job": f"/api/v1/jobs/{job_id}", **info,
                         "input": src, "output": dst}, status_code=202,
                        headers={"Location": f"/api/v1/jobs/{job_id}"})


@router.post("/api/v1/models/{name}/versions/{version}/evaluate", tags=["models"], status_code=202,
             summary="evaluate a version on a dataset as a job; the metrics are stored on the version",
             responses={202: {"content": {"application/json": {"schema": _ANY}}}, **_ERRS})
def evaluate(name: str, version: int, request: Request,
             body: dict = Body(..., examples=[{"dataset": "/user/me/test"}]),
             principal: Principal = Depends(current_principal)):
    _may_change(principal)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be an object {dataset}")
    dataset = _store_path(request, principal, body.get("dataset"), "dataset", write=False)
    reg = server(request).registry
    _api(reg.get, name, version)
    master = request.app.state.backend.settings.master
    if not master:
        raise ApiError(503, "this service was started without --master: no compute cluster", "Unavailable")
    runs = request.app.state.evaluation_runs
    run = _api(runs.start, name, version, dataset, principal.name)   # stored before we answer
    href = f"/api/v1/models/{name}/evaluations/runs/{run['id']}"
    return JSONResponse({**run, "href": href}, status_code=202, headers={"Location": href})


@router.get("/api/v1/models/{name}/evaluations/runs", tags=["models"],
            summary="every served evaluation run of a model (kept in the registry)",
            responses={**_ok(_LIST), **_ERRS})
def evaluation_runs(name: str, request: Request, principal: Principal = Depends(current_principal)) -> list:
    reg = server(request).registry
    _api(reg.versions, name)
    return _api(reg.runs, name)


@router.get("/api/v1/models/{name}/evaluations/runs/{run_id}", tags=["models"],
            summary="a served evaluation's state and, once done, its metrics", responses={**_ok(), **_ERRS})
def evaluation_run(name: str, run_id: str, request: Request,
                   principal: Principal = Depends(current_principal)) -> dict:
    return _api(server(request).registry.read_run, name, run_id)


# ------------------------------------------------------------------ the status page's models view


@router.get("/models", response_class=HTMLResponse, tags=["page"], summary="status page: models",
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                             "description": "an HTML page"}})
def models_page() -> HTMLResponse:
    """The shell of the models view (it polls /api/v1/models with the page's token, as every page does)."""
    from mapred.service.page import _render
    return _render("models.html", page="models")
