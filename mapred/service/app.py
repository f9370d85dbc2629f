"""``create_app(settings)``: the FastAPI app of ``mapred serve``, assembled from router modules.

Extension point (how the model-serving and cleanup work add their routes):
a router module is any module with a module-level ``router``
(``fastapi.APIRouter``) and, optionally, ``setup(app)`` (called once after
all routers are mounted: start background work, register metrics).  A module
is mounted when it is named in ``ROUTERS`` below, or in
``ServiceSettings.routers`` (``mapred serve --router MODULE``, or the
``MAPRED_SERVICE_ROUTERS`` environment variable, comma-separated).

Inside a route, use the shared pieces rather than new ones:
``Depends(auth.current_principal)`` for the caller, ``Depends(backend.backend)``
for the store and master clients, ``raise errors.ApiError(status, message)``
for an error in the documented shape, and ``errors.error_responses(...)`` to
document it in the OpenAPI schema.
"""
from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mapred.errors import MapredError
from mapred.service import errors as se
from mapred.service.backend import Backend
from mapred.service.limits import Limits
from mapred.service.metrics import ServiceMetrics
from mapred.service.settings import ServiceSettings
from mapred.service.tokens import TokenStore
from mapred.version import __version__

log = logging.getLogger("mapred.service")

#: Router modules every service mounts, in order.  Add yours here (one line).
ROUTERS = [
    "mapred.service.health",
    "mapred.service.webhdfs",
    "mapred.service.jobs",
    "mapred.service.results",
    "mapred.service.cluster",
    "mapred.service.nodes",       # worker drain, DataNode decommission (docs/elastic.md)
    "mapred.service.cleanup",     # retention rules and runs (docs/cleanup.md)
    "mapred.service.metrics",
    "mapred.service.page",
    "models.serving.http",        # the model registry and Open Inference Protocol v2 (docs/serving.md)
]


def create_app(settings: ServiceSettings, backend: Backend | None = None) -> FastAPI:
    """The whole service for ``settings``: routes, auth, limits, metrics, error shapes."""
    app = FastAPI(title="mapred", version=__version__,
                  description="The mapred service: WebHDFS v1 files, jobs and results, metrics, a status page.",
                  docs_url=None, redoc_url=None)   # Swagger UI would load from a CDN: the schema is at /openapi.json
    app.state.settings = settings
    app.state.backend = backend or Backend(settings)
    app.state.tokens = TokenStore(settings.token_file)
    app.state.metrics = ServiceMetrics()
    modules = [importlib.import_module(name) for name in _unique([*ROUTERS, *settings.routers])]
    for module in modules:
        app.include_router(module.router)
    for module in modules:
        if hasattr(module, "setup"):
            module.setup(app)
    _install_errors(app)
    app.add_middleware(Limits, settings=settings, refused=app.state.metrics.refused)
    app.add_middleware(_Metrics, metrics=app.state.metrics)
    app.openapi = lambda: _openapi(app)
    app.router.on_shutdown.append(app.state.backend.close)
    return app


def _unique(names):
    seen = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen


class _Metrics:
    """Adapter so ``ServiceMetrics.middleware`` is added with ``add_middleware``."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app = metrics.middleware(app)

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


def _is_webhdfs(request: Request) -> bool:
    return request.url.path.startswith("/webhdfs/")


def error_response(request: Request, err: se.ApiError) -> JSONResponse:
    if err.reason and err.status != 408 and err.status != 413:   # the limits counted those already
        request.app.state.metrics.refused(err.reason)
    return JSONResponse(err.body(_is_webhdfs(request)), status_code=err.status, headers=err.headers)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(se.ApiError)
    async def api_error(request: Request, exc: se.ApiError):
        return error_response(request, exc)

    @app.exception_handler(MapredError)
    async def mapred_error(request: Request, exc: MapredError):
        return error_response(request, se.from_mapred(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        message = None
        if _is_webhdfs(request):
            from mapred.service.webhdfs import unknown_op_message
            message = unknown_op_message(request)
        return error_response(request, se.ApiError(400, message or _describe(exc), "BadRequest",
                                                   "IllegalArgumentException"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
            headers["Allow"] = ", ".join(_allowed(request))
        return error_response(request, se.ApiError(exc.status_code, message, headers=headers))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return error_response(request, se.ApiError(500, f"internal error: {type(exc).__name__}: {exc}",
                                                   "InternalError", "RuntimeException"))


def _allowed(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path) and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)


def _describe(exc: RequestValidationError) -> str:
    """The first validation problem, as a sentence naming the parameter."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body", "header"))
        kind = (err.get("loc") or ["input"])[0]
        parts.append(f"{kind} {where or 'value'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


_ALWAYS = (413, 503)          # the limits can refuse any request
_AUTH = (401, 403)


def _openapi(app: FastAPI) -> dict:
    """The schema, made true to the error handlers: 400 (not 422) in our shapes, limits on every route."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    from mapred.service.webhdfs import PATH_SCHEMA
    for path, item in schema.get("paths", {}).items():
        webhdfs = path.startswith("/webhdfs/")
        for method, op in item.items():
            for param in op.get("parameters", []):
                if webhdfs and param["in"] == "path" and param["name"] == "path":
                    param["schema"] = dict(PATH_SCHEMA)      # the store's path rules, which store_path checks
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            statuses = [400, *_ALWAYS]
            if "{" in path:              # a value the path pattern cannot take leaves no route: 404
                statuses.append(404)
            if op.get("security"):
                statuses += list(_AUTH)
            if method in ("put", "post"):
                statuses.append(408)
            for status, spec in se.error_responses(*statuses, webhdfs=webhdfs).items():
                responses.setdefault(str(status), spec)
    schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
