"""Admission control, as plain ASGI middleware in front of every route.

- A bounded number of requests in flight: one more is refused at once with
  503 and ``Retry-After`` instead of queueing without end (health probes are
  exempt, so a busy service still looks alive).
- Body size: a declared ``Content-Length`` over the limit is refused before
  any byte is read (413); a chunked body is counted as it arrives and cut off
  at the limit — the route sees an ``ApiError(413)`` from its read and aborts
  whatever it was writing, so nothing partial is ever committed.
- A body chunk that does not arrive within ``body_timeout_s`` ends the
  request with 408: a slow client cannot hold a slot for ever.
"""
from __future__ import annotations

import asyncio
import json

from mapred.service.errors import ApiError
from mapred.service.settings import ServiceSettings

EXEMPT = ("/healthz", "/readyz")


class Limits:
    def __init__(self, app, settings: ServiceSettings, refused=None) -> None:
        self.app, self.settings = app, settings
        self.refused = refused or (lambda reason: None)
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            return await self.app(scope, receive, send)
        webhdfs = scope["path"].startswith("/webhdfs/")
        if self.in_flight >= self.settings.max_in_flight:
            self.refused("overloaded")
            return await _answer(send, ApiError(503, f"the service is at its limit of {self.settings.max_in_flight} "
                                                     "requests in flight; retry shortly", "Overloaded",
                                                "RetriableException",
                                                {"Retry-After": str(self.settings.retry_after_s)}), webhdfs)
        declared = _content_length(scope)
        if declared is not None and declared > self.settings.max_body_bytes:
            self.refused("too_large")
            return await _answer(send, _too_large(self.settings.max_body_bytes, declared), webhdfs)
        self.in_flight += 1
        try:
            await self.app(scope, self._counting(receive), send)
        finally:
            self.in_flight -= 1

    def _counting(self, receive):
        limit, timeout = self.settings.max_body_bytes, self.settings.body_timeout_s
        seen = 0

        async def wrapped():
            nonlocal seen
            try:
                message = await _within(receive(), timeout)
            except TimeoutError:
                self.refused("slow_body")
                raise ApiError(408, f"no request body bytes arrived for {timeout:g}s; the request was dropped",
                               "RequestTimeout", reason="slow_body") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    self.refused("too_large")
                    raise _too_large(limit, seen)
            return message
        return wrapped


async def _within(awaitable, timeout: float):
    """``await awaitable`` or ``TimeoutError`` after ``timeout`` seconds.

    ``asyncio.timeout`` (3.11+) arms a timer on the running task; ``wait_for``
    makes a new task per call, which for an upload is one per body chunk.
    """
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)


def _too_large(limit: int, size: int) -> ApiError:
    return ApiError(413, f"request body of {size} bytes or more is over this service's limit of {limit} bytes",
                    "PayloadTooLarge", "IllegalArgumentException", reason="too_large")


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send, err: ApiError, webhdfs: bool) -> None:
    body = json.dumps(err.body(webhdfs)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
