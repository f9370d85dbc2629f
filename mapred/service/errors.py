"""Errors as HTTP answers, in the two documented shapes.

``/api/...`` and every other route answer ``{"error": {"status", "type",
"message"}}``; ``/webhdfs/v1/...`` answers WebHDFS's own ``{"RemoteException":
{"exception", "javaClassName", "message"}}`` so existing clients understand it.
``ApiError`` is raised anywhere in a route; ``from_mapred`` maps the engine's
typed errors to a status with the table WebHDFS documents.
"""
from __future__ import annotations

from mapred import errors as me
from mapred.storage.namespace import InvalidPath

#: WebHDFS's exception -> HTTP status table (Hadoop's ExceptionHandler).
WEBHDFS_STATUS = {
    "IllegalArgumentException": 400,
    "UnsupportedOperationException": 400,
    "SecurityException": 401,
    "AccessControlException": 403,
    "FileNotFoundException": 404,
    "FileAlreadyExistsException": 403,
    "PathIsNotDirectoryException": 400,
    "PathIsNotEmptyDirectoryException": 403,
    "RetriableException": 503,
    "StandbyException": 503,
    "IOException": 500,
    "RuntimeException": 500,
}
_JAVA = {
    "IllegalArgumentException": "java.lang.IllegalArgumentException",
    "UnsupportedOperationException": "java.lang.UnsupportedOperationException",
    "SecurityException": "java.lang.SecurityException",
    "AccessControlException": "org.apache.hadoop.security.AccessControlException",
    "FileNotFoundException": "java.io.FileNotFoundException",
    "FileAlreadyExistsException": "org.apache.hadoop.fs.FileAlreadyExistsException",
    "PathIsNotDirectoryException": "org.apache.hadoop.fs.PathIsNotDirectoryException",
    "PathIsNotEmptyDirectoryException": "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
    "RetriableException": "org.apache.hadoop.ipc.RetriableException",
    "StandbyException": "org.apache.hadoop.ipc.StandbyException",
    "IOException": "java.io.IOException",
    "RuntimeException": "java.lang.RuntimeException",
}
#: HTTP status -> the WebHDFS exception name used when a route raised a plain ApiError.
_BY_STATUS = {400: "IllegalArgumentException", 401: "SecurityException", 403: "AccessControlException",
              404: "FileNotFoundException", 405: "UnsupportedOperationException",
              408: "IOException", 409: "FileAlreadyExistsException", 411: "IllegalArgumentException",
              413: "IllegalArgumentException", 415: "IllegalArgumentException",
              422: "IllegalArgumentException", 503: "RetriableException"}


class ApiError(Exception):
    """An HTTP error answer: ``status``, a short ``type`` and a message naming what was wrong.

    ``webhdfs`` is the WebHDFS exception name to use on WebHDFS routes
    (defaults from the status); ``headers`` are added to the answer.
    """

    def __init__(self, status: int, message: str, type: str = "", webhdfs: str = "",
                 headers: dict | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.type = type or _TYPES.get(status, "Error")
        self.webhdfs = webhdfs or _BY_STATUS.get(status, "IOException")
        self.headers = headers or {}
        self.reason = reason    # a metric label for refusals (too_large, overloaded, ...)

    def body(self, webhdfs: bool) -> dict:
        if webhdfs:
            return remote_exception(self.webhdfs, self.message)
        return {"error": {"status": self.status, "type": self.type, "message": self.message}}


_TYPES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
          405: "MethodNotAllowed", 408: "RequestTimeout", 409: "Conflict", 411: "LengthRequired",
          413: "PayloadTooLarge", 415: "UnsupportedMediaType", 422: "InvalidBody",
          500: "InternalError", 503: "Unavailable"}


def remote_exception(exception: str, message: str) -> dict:
    return {"RemoteException": {"exception": exception, "javaClassName": _JAVA.get(exception, "java.io.IOException"),
                                "message": message}}


def from_mapred(exc: me.MapredError) -> ApiError:
    """The HTTP form of an engine error (store, cluster, config)."""
    msg = str(exc)
    if isinstance(exc, InvalidPath):
        return ApiError(400, msg, "InvalidPath", "IllegalArgumentException")
    if isinstance(exc, me.FileNotFound):
        return ApiError(404, msg, "NotFound", "FileNotFoundException")
    if isinstance(exc, me.FileExists):
        return ApiError(403, msg, "AlreadyExists", "FileAlreadyExistsException")
    if isinstance(exc, me.PermissionDenied):     # the NameNode's owner and permission check
        return ApiError(403, msg, "Forbidden", "AccessControlException")
    if isinstance(exc, me.SafeModeError):
        return ApiError(503, msg, "SafeMode", "RetriableException", {"Retry-After": "5"})
    if isinstance(exc, (me.NoLiveReplica, me.ClusterError)):
        return ApiError(503, msg, "Unavailable", "RetriableException", {"Retry-After": "2"})
    if isinstance(exc, (me.ConfigError, me.InputError)):
        return ApiError(400, msg, "BadRequest", "IllegalArgumentException")
    if isinstance(exc, me.StorageError) and "holds users' trash" in msg:
        return ApiError(403, msg.replace("--skip-trash", "skiptrash=true"), "Forbidden", "AccessControlException")
    if isinstance(exc, me.StorageError) and "non-empty directory" in msg:
        return ApiError(403, msg, "NotEmpty", "PathIsNotEmptyDirectoryException")
    if isinstance(exc, me.StorageError) and ("not a directory" in msg or "into itself" in msg
                                             or "refusing" in msg or "cannot rename /" in msg):
        return ApiError(400, msg, "BadRequest", "IllegalArgumentException")
    if isinstance(exc, me.StorageError):
        return ApiError(503, msg, "StorageError", "RetriableException", {"Retry-After": "2"})
    return ApiError(503, f"{type(exc).__name__}: {msg}", "Unavailable", "RetriableException",
                    {"Retry-After": "2"})


#: OpenAPI description of the error bodies, for ``responses=`` on routes.
ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["status", "type", "message"],
                             "properties": {"status": {"type": "integer"}, "type": {"type": "string"},
                                            "message": {"type": "string"}}}},
}
REMOTE_EXCEPTION_SCHEMA = {
    "type": "object", "required": ["RemoteException"],
    "properties": {"RemoteException": {"type": "object", "required": ["exception", "javaClassName", "message"],
                                       "properties": {"exception": {"type": "string"},
                                                      "javaClassName": {"type": "string"},
                                                      "message": {"type": "string"}}}},
}


def error_responses(*statuses: int, webhdfs: bool = False) -> dict:
    """``responses=`` entries documenting error answers of a route."""
    schema = REMOTE_EXCEPTION_SCHEMA if webhdfs else ERROR_SCHEMA
    return {s: {"description": _TYPES.get(s, "Error"), "content": {"application/json": {"schema": schema}}}
            for s in statuses}
