"""The status page: server-rendered shells (jinja2) that poll the JSON API once a second.

``/`` shows the cluster and the jobs, ``/jobs/{id}`` one job (phases,
tasks and attempts, errors with tracebacks, the log), ``/store/<path>`` the
namespace.  The shells carry no data, so they need no token; the script asks
for one (or takes ``#token=...`` from the URL, then drops it from the
address bar) and sends it with every API call.  Everything the page uses is
served from ``/static``: it works with no internet access.
"""
from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from mapred.version import __version__

HERE = os.path.dirname(os.path.abspath(__file__))
router = APIRouter(tags=["page"])
_env = Environment(loader=FileSystemLoader(os.path.join(HERE, "templates")), autoescape=select_autoescape())
_HTML = {200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "an HTML page"}}


def _render(name: str, **values) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(version=__version__, **values))


@router.get("/", response_class=HTMLResponse, responses=_HTML, summary="status page: cluster and jobs")
def index() -> HTMLResponse:
    return _render("index.html", page="index")


@router.get("/jobs/{job_id}", response_class=HTMLResponse, responses=_HTML, summary="status page: one job")
def job_page(job_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,64}$")]) -> HTMLResponse:
    return _render("job.html", page="job", job_id=job_id)


@router.get("/store", response_class=HTMLResponse, responses=_HTML, summary="status page: the store's root")
@router.get("/store/{path:path}", response_class=HTMLResponse, responses=_HTML, summary="status page: the store")
def store_page(request: Request, path: str = "") -> HTMLResponse:
    return _render("store.html", page="store", path="/" + path.strip("/"))


def setup(app) -> None:
    app.mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static")
