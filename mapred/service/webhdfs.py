"""WebHDFS v1 over the block store, so that existing HDFS clients work unchanged.

``/webhdfs/v1/<path>?op=...`` with Hadoop's operations, parameters, JSON
shapes (``FileStatus``, ``FileStatuses``, ``DirectoryListing``,
``ContentSummary``, ``FileChecksum``, ``{"boolean": ...}``, ``{"Path": ...}``)
and errors (``RemoteException``, see ``errors``).  Data never sits in the
service's memory beyond a block: OPEN streams ranges of the file as they are
read from DataNodes, CREATE and APPEND stream the request body into a block
writer.  CREATE and APPEND are two-step as in Hadoop: the first request
(without ``data=true``) checks the request and answers 307 with a
``Location`` that is this service itself (HttpFS style, or
``--redirect-base``), so a client that reached the service can finish.

APPEND writes the new bytes as a hidden file and then ``concat``-s its blocks
onto the end of the target in one NameNode step: readers see the old file or
the whole append, never half of it; an upload that stops halfway is
abandoned and the target is unchanged.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from mapred.errors import FileExists, FileNotFound, MapredError
from mapred.net.transport import has_credentials
from mapred.security.principals import Principal, Role
from mapred.service import access
from mapred.service.auth import forbidden, webhdfs_principal
from mapred.service.backend import Backend, backend
from mapred.service.checksum import md5_md5_crc32c
from mapred.service.errors import ApiError, error_responses
from mapred.storage.namespace import MAX_NAME, MAX_PATH

log = logging.getLogger("mapred.service.webhdfs")
router = APIRouter(tags=["webhdfs"])
PREFIX = "/webhdfs/v1"
APPEND_DIR = "/.mapred-service/appends"   # hidden staging of appended bytes (moved by concat)
WRITE_CHUNK = 4 << 20                     # body bytes handed to the block writer at once
READ_PIECE = 4 << 20                      # bytes per DataNode read while streaming OPEN
READ_AHEAD = 2                            # OPEN's pieces read (and verified) ahead, each in its own thread
LIST_BATCH = 1000                         # entries per LISTSTATUS_BATCH answer (Hadoop's dfs.ls.limit)


class GetOp(str, Enum):
    OPEN = "OPEN"
    GETFILESTATUS = "GETFILESTATUS"
    LISTSTATUS = "LISTSTATUS"
    LISTSTATUS_BATCH = "LISTSTATUS_BATCH"
    GETCONTENTSUMMARY = "GETCONTENTSUMMARY"
    GETFILECHECKSUM = "GETFILECHECKSUM"
    GETHOMEDIRECTORY = "GETHOMEDIRECTORY"
    GETTRASHROOT = "GETTRASHROOT"


class PutOp(str, Enum):
    CREATE = "CREATE"
    MKDIRS = "MKDIRS"
    RENAME = "RENAME"
    SETREPLICATION = "SETREPLICATION"


class PostOp(str, Enum):
    APPEND = "APPEND"


class DeleteOp(str, Enum):
    DELETE = "DELETE"


# -- JSON schemas of the answers (for the OpenAPI document) -------------------------------------
_FILE_STATUS = {"type": "object", "required": ["pathSuffix", "type", "length", "replication", "blockSize",
                                               "modificationTime", "owner", "group", "permission"],
                "properties": {k: {"type": t} for k, t in {
                    "accessTime": "integer", "blockSize": "integer", "childrenNum": "integer", "fileId": "integer",
                    "group": "string", "length": "integer", "modificationTime": "integer", "owner": "string",
                    "pathSuffix": "string", "permission": "string", "replication": "integer",
                    "storagePolicy": "integer", "type": "string"}.items()}}
_STATUSES = {"type": "object", "required": ["FileStatus"],
             "properties": {"FileStatus": {"type": "array", "items": _FILE_STATUS}}}
_SCHEMAS = {
    "FileStatus": {"type": "object", "required": ["FileStatus"], "properties": {"FileStatus": _FILE_STATUS}},
    "FileStatuses": {"type": "object", "required": ["FileStatuses"], "properties": {"FileStatuses": _STATUSES}},
    "DirectoryListing": {"type": "object", "required": ["DirectoryListing"], "properties": {"DirectoryListing": {
        "type": "object", "required": ["partialListing", "remainingEntries"],
        "properties": {"partialListing": {"type": "object", "properties": {"FileStatuses": _STATUSES}},
                       "remainingEntries": {"type": "integer"}}}}},
    "ContentSummary": {"type": "object", "required": ["ContentSummary"], "properties": {"ContentSummary": {
        "type": "object", "properties": {k: {"type": "integer"} for k in (
            "directoryCount", "fileCount", "length", "quota", "spaceConsumed", "spaceQuota")}}}},
    "FileChecksum": {"type": "object", "required": ["FileChecksum"], "properties": {"FileChecksum": {
        "type": "object", "properties": {"algorithm": {"type": "string"}, "bytes": {"type": "string"},
                                         "length": {"type": "integer"}}}}},
    "Path": {"type": "object", "required": ["Path"], "properties": {"Path": {"type": "string"}}},
    "boolean": {"type": "object", "required": ["boolean"], "properties": {"boolean": {"type": "boolean"}}},
    "Location": {"type": "object", "required": ["Location"], "properties": {"Location": {"type": "string"}}},
}


def _one_of(*names: str) -> dict:
    return {"application/json": {"schema": {"anyOf": [_SCHEMAS[n] for n in names]}}}


_REDIRECT = {"description": "the data step: send the bytes to the Location header",
             "headers": {"Location": {"schema": {"type": "string"}}}}
_GET_RESPONSES = {200: {"description": "OPEN: the bytes (application/octet-stream); others: JSON",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                                    **_one_of("FileStatus", "FileStatuses", "DirectoryListing", "ContentSummary",
                                              "FileChecksum", "Path")}},
                  **error_responses(400, 403, 404, webhdfs=True)}
_PUT_RESPONSES = {200: {"description": "MKDIRS, RENAME, SETREPLICATION; CREATE with noredirect=true",
                        "content": _one_of("boolean", "Location")},
                  201: {"description": "CREATE's data step: the file is written and visible",
                        "headers": {"Location": {"schema": {"type": "string"}}}},
                  307: _REDIRECT, **error_responses(400, 403, 404, webhdfs=True)}
_POST_RESPONSES = {200: {"description": "APPEND's data step (empty body); with noredirect=true the Location",
                         "content": _one_of("Location")},
                   307: _REDIRECT, **error_responses(400, 403, 404, webhdfs=True)}
_DELETE_RESPONSES = {200: {"description": "whether anything was deleted", "content": _one_of("boolean")},
                     **error_responses(400, 403, webhdfs=True)}

# The paths ``store_path`` takes, for the OpenAPI document: slashes around components that are not
# empty, ``.`` or ``..``, have no NUL and at most MAX_NAME characters; MAX_PATH in all.
_SEGMENT = (rf"(?:[^/\x00.][^/\x00]{{0,{MAX_NAME - 1}}}|\.[^/\x00.][^/\x00]{{0,{MAX_NAME - 2}}}"
            rf"|\.\.[^/\x00]{{1,{MAX_NAME - 2}}})")
PATH_SCHEMA = {"type": "string", "maxLength": MAX_PATH, "pattern": rf"^/*(?:{_SEGMENT}(?:/{_SEGMENT})*)?/*$",
               "description": "the store path, without the leading slash"}


Offset = Annotated[int, Query(ge=0, le=1 << 62, description="OPEN: first byte")]
Length = Annotated[int | None, Query(ge=0, le=1 << 62, description="OPEN: bytes to read (default: to the end)")]
Flag = Annotated[bool, Query()]
Replication = Annotated[int | None, Query(ge=1, le=32, description=(
    "CREATE: the file's replication (default: the store's); SETREPLICATION: the new factor, required "
    "(400 without it)"))]
BlockSize = Annotated[int | None, Query(ge=1024, le=1 << 34, alias="blocksize", description="CREATE: bytes per block")]
BufferSize = Annotated[int | None, Query(ge=1, le=1 << 30, alias="buffersize", description="accepted and ignored")]
Permission = Annotated[str | None, Query(pattern=r"^[0-1]?[0-7]{3}$", description="accepted and ignored")]
Destination = Annotated[str | None, Query(max_length=MAX_PATH, json_schema_extra={"pattern": PATH_SCHEMA["pattern"]},
                                          description="RENAME: the new path, required (400 without it)")]
StartAfter = Annotated[str | None, Query(alias="startAfter", max_length=255,
                                         description="LISTSTATUS_BATCH: the last name of the previous batch")]


# -- paths and statuses -------------------------------------------------------------------------

def store_path(raw: str) -> str:
    """The store path of the URL's ``<path>``: absolute, without ``..``, ``.``, NUL or empty parts.

    Exactly the paths ``PATH_SCHEMA`` describes (the store's own rules), so
    what the schema calls valid is never refused here, and what it calls
    invalid always is.
    """
    if len(raw) > MAX_PATH:
        raise ApiError(400, f"path is over {MAX_PATH} characters", "InvalidPath", "IllegalArgumentException")
    path = "/" + raw.strip("/") if raw.strip("/") else "/"
    if "\x00" in path:
        raise ApiError(400, f"path {path[:80]!r} contains a NUL byte", "InvalidPath", "IllegalArgumentException")
    parts = path.strip("/").split("/") if path != "/" else []
    if any(p in ("", ".", "..") for p in parts):
        raise ApiError(400, f"path {path!r} has an empty, '.' or '..' component", "InvalidPath",
                       "IllegalArgumentException")
    if any(len(p) > MAX_NAME for p in parts):
        raise ApiError(400, f"path {path[:80]!r} has a component over {MAX_NAME} characters", "InvalidPath",
                       "IllegalArgumentException")
    return path


def _owner(path: str) -> str:
    parts = path.strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "user" else "mapred"


def file_status(entry: dict, suffix: str) -> dict:
    """A store entry as WebHDFS's ``FileStatus``."""
    is_dir = entry["type"] == "dir"
    return {"accessTime": 0 if is_dir else int(entry["mtime"] * 1000),
            "blockSize": 0 if is_dir else int(entry.get("block_size", 0)),
            "childrenNum": int(entry.get("children", 0)) if is_dir else 0,
            "fileId": zlib.crc32(entry["path"].encode()) + 16386,
            "group": "supergroup", "length": 0 if is_dir else int(entry["length"]),
            "modificationTime": int(entry["mtime"] * 1000), "owner": _owner(entry["path"]),
            "pathSuffix": suffix, "permission": "755" if is_dir else "644",
            "replication": 0 if is_dir else int(entry.get("replication", 0)), "storagePolicy": 0,
            "type": "DIRECTORY" if is_dir else "FILE"}


def _name(entry: dict) -> str:
    return entry["path"].rsplit("/", 1)[1]


def _store(b: Backend, principal: Principal):
    """The store client acting for ``principal``: the NameNode checks and records that user.

    An HTTP admin's requests go as the service itself (it never lends admin
    rights through ``as_user``).  On a keyed cluster the shared roots
    (``/user``, ``/tmp``) are made first by the service, so they belong to
    nobody and every user may make their own home in them.
    """
    store = b.store()
    if principal.role is Role.ADMIN:
        return store
    if not getattr(b, "roots_made", False) and has_credentials():
        for top in (access.HOME_ROOT, *access.SHARED):
            if not store.exists(top):
                store.mkdir(top, parents=True)
        b.roots_made = True
    return store.as_user(principal.name)


def _may(principal: Principal, path: str, write: bool) -> None:
    ok = access.may_write(principal, path) if write else access.may_read(principal, path)
    if not ok:
        verb = "write" if write else "read"
        raise forbidden(f"Permission denied: {principal.name} ({principal.role.value}) may not {verb} {path}")


# -- GET ------------------------------------------------------------------------------------------

@router.get(PREFIX, include_in_schema=False)
@router.get(PREFIX + "/{path:path}", responses=_GET_RESPONSES, summary="WebHDFS read operations")
def webhdfs_get(request: Request, op: GetOp, path: str = "", offset: Offset = 0, length: Length = None,
                buffersize: BufferSize = None, startAfter: StartAfter = None, noredirect: Flag = False,
                principal: Principal = Depends(webhdfs_principal), b: Backend = Depends(backend)):
    """OPEN (streamed, with offset and length), GETFILESTATUS, LISTSTATUS(_BATCH), GETCONTENTSUMMARY,
    GETFILECHECKSUM, GETHOMEDIRECTORY, GETTRASHROOT."""
    p = store_path(path)
    if op is GetOp.GETHOMEDIRECTORY:
        return {"Path": access.home(principal)}
    if op is GetOp.GETTRASHROOT:
        return {"Path": access.home(principal) + "/.Trash"}
    _may(principal, p, write=False)
    store = _store(b, principal)
    if op is GetOp.OPEN:
        return _open(store, p, offset, length)
    if op is GetOp.GETFILESTATUS:
        return {"FileStatus": file_status(store.stat(p), "")}
    if op is GetOp.LISTSTATUS:
        return {"FileStatuses": {"FileStatus": _listing(store, p)}}
    if op is GetOp.LISTSTATUS_BATCH:
        return _batch(store, p, startAfter)
    if op is GetOp.GETCONTENTSUMMARY:
        return {"ContentSummary": _summary(store, p)}
    return {"FileChecksum": _checksum(store, p)}


def _listing(store, p: str) -> list[dict]:
    """A directory's children; for a file, the file itself with an empty suffix (as Hadoop does)."""
    st = store.stat(p)
    if st["type"] != "dir":
        return [file_status(st, "")]
    return [file_status(e, _name(e)) for e in sorted(store.ls(p), key=_name)]


def _batch(store, p: str, start_after: str | None) -> dict:
    st = store.stat(p)
    if st["type"] != "dir":
        raise ApiError(400, f"{p} is not a directory: LISTSTATUS_BATCH lists directories", "NotADirectory",
                       "PathIsNotDirectoryException")
    entries = sorted(store.ls(p), key=_name)
    if start_after:
        entries = [e for e in entries if _name(e) > start_after]
    batch = entries[:LIST_BATCH]
    return {"DirectoryListing": {"partialListing": {"FileStatuses": {
        "FileStatus": [file_status(e, _name(e)) for e in batch]}}, "remainingEntries": len(entries) - len(batch)}}


def _summary(store, p: str) -> dict:
    dirs = files = length = consumed = 0
    stack = [store.stat(p)]
    while stack:
        e = stack.pop()
        if e["type"] == "dir":
            dirs += 1
            stack.extend(store.ls(e["path"]))
        else:
            files += 1
            length += int(e["length"])
            consumed += int(e["length"]) * int(e.get("replication", 1))
    return {"directoryCount": dirs, "fileCount": files, "length": length, "quota": -1,
            "spaceConsumed": consumed, "spaceQuota": -1}


def _checksum(store, p: str) -> dict:
    """Hadoop's MD5-of-MD5-of-CRC32C, from the CRCs the DataNodes store (see ``checksum``)."""
    st = store.stat(p)
    if st["type"] == "dir":
        raise ApiError(404, f"{p} is a directory: GETFILECHECKSUM takes a file", "NotAFile", "FileNotFoundException")
    return md5_md5_crc32c(store.block_checksums(p))


def _open(store, p: str, offset: int, length: int | None):
    from mapred.storage.client import BlockReader
    st = store.stat(p)
    if st["type"] == "dir":
        raise ApiError(404, f"{p} is a directory: OPEN takes a file", "NotAFile", "FileNotFoundException")
    size = int(st["length"])
    if offset > size:
        raise ApiError(400, f"offset {offset} is past the end of {p} ({size} bytes)", "BadRequest",
                       "IllegalArgumentException")
    end = size if length is None else min(size, offset + length)
    reader = BlockReader(store, p)
    reader.seek(offset)
    pool = ThreadPoolExecutor(max_workers=READ_AHEAD, thread_name_prefix="webhdfs-open")
    pieces = reader.pieces(pool, lookahead=READ_AHEAD, end=end, piece=READ_PIECE)
    try:   # the first piece before the status line: a range no replica can serve is an error answer
        first = next(pieces, None)
        head = reader.advance(first.result()) if first else b""
    except BaseException:
        pieces.close()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return StreamingResponse(_stream(reader, pool, pieces, head, p), media_type="application/octet-stream",
                             headers={"Content-Length": str(end - offset)})


async def _stream(reader, pool, pieces, head: bytes, p: str):
    """OPEN's body: pieces read and CRC-verified in threads, awaited here, so the event loop only writes.

    Every piece is verified before it is yielded (``BlockReader.pieces``).  A
    piece after the first that no replica can serve ends the stream short of
    its Content-Length: the client sees an incomplete body, never wrong bytes.
    """
    try:
        if head:
            yield head
        for future in pieces:
            yield reader.advance(await asyncio.wrap_future(future))
    except MapredError as exc:     # the status is sent already: cut the stream, say why in the log
        log.warning("OPEN %s stopped at byte %d: %s", p, reader.pos, exc)
        raise
    finally:                       # a client gone mid-stream: drop queued reads, never wait on the loop
        pieces.close()
        pool.shutdown(wait=False, cancel_futures=True)


# -- PUT ------------------------------------------------------------------------------------------

@router.put(PREFIX, include_in_schema=False)
@router.put(PREFIX + "/{path:path}", responses=_PUT_RESPONSES, summary="WebHDFS write operations",
            openapi_extra={"requestBody": {"required": False, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def webhdfs_put(request: Request, op: PutOp, path: str = "", overwrite: Flag = False,
                      replication: Replication = None, blocksize: BlockSize = None, buffersize: BufferSize = None,
                      permission: Permission = None, destination: Destination = None, data: Flag = False,
                      noredirect: Flag = False, principal: Principal = Depends(webhdfs_principal),
                      b: Backend = Depends(backend)):
    """CREATE (two steps, streamed), MKDIRS, RENAME, SETREPLICATION."""
    p = store_path(path)
    _may(principal, p, write=True)
    store = _store(b, principal)
    if op is PutOp.CREATE:
        if not data:
            await run_in_threadpool(_check_create, store, p, overwrite)
            return _redirect(request, b, p, "CREATE", noredirect, overwrite=str(overwrite).lower(),
                             replication=replication, blocksize=blocksize)
        await _receive(request, store, p, overwrite=overwrite, replication=replication or b.settings.replication,
                       block_size=blocksize or 0)
        return Response(status_code=201, headers={"Location": f"webhdfs://{request.url.netloc}{quote(p)}"})
    if op is PutOp.MKDIRS:
        await run_in_threadpool(_mkdirs, store, p)
        return {"boolean": True}
    if op is PutOp.RENAME:
        if not destination:
            raise ApiError(400, "RENAME needs the destination parameter", "BadRequest", "IllegalArgumentException")
        dst = store_path(destination)
        _may(principal, dst, write=True)
        await run_in_threadpool(store.mv, p, dst)
        return {"boolean": True}
    if replication is None:
        raise ApiError(400, "SETREPLICATION needs the replication parameter", "BadRequest",
                       "IllegalArgumentException")
    return {"boolean": await run_in_threadpool(_setrep, store, p, replication)}


def _check_create(store, p: str, overwrite: bool) -> None:
    """Refuse early what the data step would refuse: an existing file without overwrite, a directory."""
    try:
        st = store.stat(p)
    except FileNotFound:
        return
    if st["type"] == "dir":
        raise ApiError(403, f"{p} is a directory", "AlreadyExists", "FileAlreadyExistsException")
    if not overwrite:
        raise ApiError(403, f"{p} already exists (pass overwrite=true to replace it)", "AlreadyExists",
                       "FileAlreadyExistsException")


def _mkdirs(store, p: str) -> None:
    try:
        st = store.stat(p)
    except FileNotFound:
        store.mkdir(p, parents=True)
        return
    if st["type"] != "dir":
        raise FileExists(f"{p} exists and is a file")


def _setrep(store, p: str, replication: int) -> bool:
    """Hadoop's rule: a file's factor changes (true); a directory is left alone (false)."""
    if store.stat(p)["type"] == "dir":
        return False
    store.setrep(p, replication)
    return True


def _redirect(request: Request, b: Backend, p: str, op: str, noredirect: bool, **params):
    """307 to the data step on this service (or ``--redirect-base``), carrying a ``delegation`` token on."""
    query = {"op": op, "data": "true", **{k: v for k, v in params.items() if v is not None}}
    token = getattr(request.state, "delegation", None)
    if token:
        query["delegation"] = token
    base = b.settings.redirect_base.rstrip("/") or str(request.base_url).rstrip("/")
    location = f"{base}{PREFIX}{quote(p)}?{urlencode(query)}"
    if noredirect:
        return {"Location": location}
    return Response(status_code=307, headers={"Location": location})


async def _receive(request: Request, store, p: str, **create) -> int:
    """Stream the request body into a new file at ``p``; the file appears only if every byte came."""
    writer = await run_in_threadpool(lambda: store.open(p, "wb", **create))
    written, buf = 0, bytearray()
    try:
        async for chunk in request.stream():
            buf += chunk
            if len(buf) >= WRITE_CHUNK:      # the writer copies what it keeps: hand it the buffer itself
                await run_in_threadpool(writer.write, buf)
                written += len(buf)
                buf = bytearray()
        if buf:
            await run_in_threadpool(writer.write, buf)
            written += len(buf)
        await run_in_threadpool(writer.close)
    except BaseException as exc:
        await run_in_threadpool(writer.abort)
        if isinstance(exc, ClientDisconnect):
            log.warning("upload of %s stopped after %d bytes: the client went away; nothing was kept", p, written)
            raise ApiError(400, f"the request body of {p} ended early; nothing was stored") from None
        raise
    return written


# -- POST -----------------------------------------------------------------------------------------

@router.post(PREFIX + "/{path:path}", responses=_POST_RESPONSES, summary="WebHDFS APPEND",
             openapi_extra={"requestBody": {"required": False, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def webhdfs_post(request: Request, op: PostOp, path: str = "", buffersize: BufferSize = None,
                       data: Flag = False, noredirect: Flag = False,
                       principal: Principal = Depends(webhdfs_principal), b: Backend = Depends(backend)):
    """APPEND, two steps: the bytes are staged as a hidden file, then moved onto the target's end at once."""
    p = store_path(path)
    _may(principal, p, write=True)
    store = _store(b, principal)
    st = await run_in_threadpool(store.stat, p)
    if st["type"] == "dir":
        raise ApiError(404, f"{p} is a directory: APPEND takes a file", "NotAFile", "FileNotFoundException")
    if not data:
        return _redirect(request, b, p, "APPEND", noredirect)
    staged = f"{APPEND_DIR}/{uuid.uuid4().hex}"
    n = await _receive(request, store, staged, overwrite=False, replication=int(st.get("replication", 0)),
                       block_size=int(st.get("block_size", 0)))
    try:
        if n:
            await run_in_threadpool(store.concat, p, [staged])
        else:
            await run_in_threadpool(store.rm, staged)
    except BaseException:
        await run_in_threadpool(_discard, store, staged)
        raise
    return Response(status_code=200)


def _discard(store, path: str) -> None:
    try:
        store.rm(path)
    except MapredError as exc:
        log.warning("could not remove staged append %s: %s", path, exc)


# -- DELETE ---------------------------------------------------------------------------------------

@router.delete(PREFIX + "/{path:path}", responses=_DELETE_RESPONSES, summary="WebHDFS DELETE")
def webhdfs_delete(op: DeleteOp, path: str = "", recursive: Flag = False,
                   skiptrash: Annotated[bool, Query(description="delete at once instead of moving to the "
                                                                "caller's trash")] = False,
                   principal: Principal = Depends(webhdfs_principal), b: Backend = Depends(backend)):
    """DELETE (``recursive`` for a non-empty directory); false when there was nothing to delete.

    As ``mapred fs rm``: the path moves to the trash of the authenticated principal
    (``/user/NAME/.Trash/Current/...``; a ``user.name`` parameter is not an identity and
    is ignored) unless ``skiptrash=true``.  Hadoop's WebHDFS has the same parameter but
    defaults it to true for old clients; here the trash is the default, as for ``rm``.
    """
    p = store_path(path)
    if p == "/":
        raise ApiError(403, "refusing to delete /", "Forbidden", "AccessControlException")
    _may(principal, p, write=True)
    try:
        where = _store(b, principal).rm(p, recursive=recursive, trash=not skiptrash, user=principal.name)
    except FileNotFound:
        return {"boolean": False}
    if where:
        log.info("DELETE %s by %s: moved to %s", p, principal.name, where)
    return {"boolean": True}


def setup(app) -> None:
    """Unknown ops get WebHDFS's own message (an IllegalArgumentException naming the valid ones)."""
    app.state.webhdfs_ops = {"GET": [o.value for o in GetOp], "PUT": [o.value for o in PutOp],
                             "POST": [o.value for o in PostOp], "DELETE": [o.value for o in DeleteOp]}


def unknown_op_message(request: Request) -> str | None:
    """The message for a bad or missing ``op`` on a WebHDFS route, or None if ``op`` was fine."""
    ops = getattr(request.app.state, "webhdfs_ops", {}).get(request.method)
    given = request.query_params.get("op")
    if ops is None or (given is not None and given.upper() in ops):
        return None
    if given is None:
        return f"the op parameter is missing; {request.method} takes {', '.join(ops)}"
    return f"Invalid value for webhdfs parameter \"op\": {given!r} is not a {request.method} op ({', '.join(ops)})"

