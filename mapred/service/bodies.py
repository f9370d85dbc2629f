"""Small JSON request bodies, read with a size cap and validated into a pydantic model.

FastAPI would read any body whole before validating it; this reads at most
``max_json_bytes`` (413 past that), insists on ``application/json`` (415) and
names what is wrong in a 400.  Routes document the body with ``json_body_schema``.

    @router.put("/x", openapi_extra=json_body_schema(MyModel))
    async def x(request: Request):
        body = await json_body(request, MyModel)
"""
from __future__ import annotations

import json

from fastapi import Request
from pydantic import BaseModel, ValidationError

from mapred.service.errors import ApiError


async def json_body(request: Request, model: type[BaseModel]):
    """The request's JSON body as ``model``; 415, 413 or 400 (naming the field) otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, f"the body must be application/json, not {ctype or 'missing'}", "UnsupportedMediaType")
    limit = request.app.state.settings.max_json_bytes
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, f"a JSON body may be at most {limit} bytes", "PayloadTooLarge", reason="too_large")
    try:
        value = json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", "InvalidJson") from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        what = "; ".join(f"{'.'.join(map(str, e.get('loc', ()))) or 'body'}: {e.get('msg')}" for e in exc.errors()[:3])
        raise ApiError(400, f"invalid body: {what}", "InvalidBody") from None


def json_body_schema(model: type[BaseModel]) -> dict:
    """``openapi_extra`` documenting a JSON body read by ``json_body``."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
