"""Result queries: page through a finished job's output as JSON, and look one key up by seeking.

``GET /api/v1/jobs/{id}/results?limit=&cursor=`` reads the committed parts in
order from where the cursor points (part, byte offset, records to skip), so
a page costs its own records, never the ones before it.  ``GET
/api/v1/jobs/{id}/results/{key}`` uses the per-part key indexes written at
commit (``mapred.io.keyindex``, kept in ``_SUCCESS``): the default
partitioner names the part to try first, the index narrows it to a few
records' byte range, and only that range is read.  A part without an index
(unsorted reducer output, map-only output) is scanned, and the answer says so.
"""
from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from mapred.errors import FileNotFound, MapredError
from mapred.io import keyindex, recordfile
from mapred.io.fs import get_fs
from mapred.io.outputs import SUCCESS, read_part
from mapred.security.principals import Principal
from mapred.service.auth import current_principal
from mapred.service.backend import Backend, backend
from mapred.service.errors import ApiError, error_responses
from mapred.service.jobs import JobIdPath, visible_job

router = APIRouter(prefix="/api/v1", tags=["results"])
_commits: dict[str, dict] = {}
_commits_lock = threading.Lock()


class Record(BaseModel):
    key: Any = Field(description="the key as written (text output: a string)")
    value: Any = Field(description="the value as written; bytes appear as {\"base64\": ...}")


class ResultPage(BaseModel):
    job_id: str
    records: list[Record]
    next: str | None = Field(description="pass as `cursor` for the next page; null after the last record")


class Lookup(BaseModel):
    job_id: str
    key: Any
    value: Any = Field(description="the first value of the key")
    values: list[Any] = Field(description="every value the output holds for the key, in order")
    part: str
    scanned: list[str] = Field(description="parts read whole because they have no key index")


# -- the committed output -------------------------------------------------------------------------

def jsonable(value: Any) -> Any:
    """A decoded record value as JSON: bytes become ``{"base64": ...}``, tuples lists."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value


class Output:
    """A succeeded job's committed output: its parts, their sizes and their key indexes."""

    def __init__(self, job_id: str, path: str, fmt: str, reducers: int) -> None:
        self.job_id, self.path, self.fmt, self.reducers = job_id, path, fmt, reducers
        self.fs = get_fs(path)
        try:
            with self.fs.open_read(self.fs.join(path, SUCCESS)) as f:
                info = json.loads(f.read() or b"{}")
        except (FileNotFound, MapredError, OSError, ValueError) as exc:
            raise ApiError(410, f"the output of job {job_id} at {path} is gone or unreadable ({exc})",
                           "Gone") from None
        self.index: dict = info.get("index") or {}
        self.parts = sorted(n for n in self.fs.listdir(path) if n.startswith("part-"))
        if fmt not in ("text", "msgpack") or any(self.fs.isdir(self.fs.join(path, n)) for n in self.parts[:1]):
            raise ApiError(409, f"job {job_id} wrote {fmt!r} output; results are served for text and msgpack",
                           "UnsupportedOutput")

    def part_path(self, name: str) -> str:
        return self.fs.join(self.path, name)

    def records_from(self, part: int, offset: int):
        """``(key, value, at, i)`` from ``offset`` of part number ``part``.

        ``at`` is where a page may resume: a text record's own offset, or the
        offset of the msgpack chunk holding it, with ``i`` its place in the chunk.
        """
        path = self.part_path(self.parts[part])
        if self.fmt == "text":
            with self.fs.open_read(path) as f:
                f.seek(offset)
                pos = offset
                for raw in f:
                    line = raw.decode("utf-8", errors="surrogateescape").rstrip("\n")
                    key, tab, value = line.partition("\t")
                    yield key, (value if tab else None), pos, 0
                    pos += len(raw)
            return
        size = self.fs.size(path)
        with self.fs.open_read(path) as f:
            for chunk_pos, payload in recordfile.iter_chunks(f, path, max(offset, recordfile.HEADER_LEN), size):
                for i, (key, value) in enumerate(recordfile.iter_records(payload)):
                    yield key, value, chunk_pos, i

    def read_range(self, name: str, start: int, end: int):
        """The records whose bytes lie in ``[start, end)`` of part ``name``."""
        path = self.part_path(name)
        with self.fs.open_read(path) as f:
            if self.fmt == "text":
                f.seek(start)
                data = f.read(end - start)
                for raw in data.splitlines():
                    key, tab, value = raw.decode("utf-8", errors="surrogateescape").partition("\t")
                    yield key, (value if tab else None)
                return
            for _, payload in recordfile.iter_chunks(f, path, max(start, recordfile.HEADER_LEN), end):
                yield from recordfile.iter_records(payload)


def output_of(b: Backend, principal: Principal, job_id: str) -> Output:
    st = visible_job(b, principal, job_id)
    if st["state"] != "SUCCEEDED":
        raise ApiError(409, f"job {job_id} is {st['state']}: results exist once it has SUCCEEDED", "NotFinished")
    with _commits_lock:
        hit = _commits.get(job_id)
    if hit is not None and hit.get("output") == st.get("output"):
        return hit["value"]
    out = Output(job_id, st.get("output", ""), st.get("output_format") or "text", int(st.get("reducers") or 0))
    with _commits_lock:
        if len(_commits) > 256:
            _commits.clear()
        _commits[job_id] = {"output": st.get("output"), "value": out}
    return out


# -- cursors ----------------------------------------------------------------------------------------

def encode_cursor(part: int, offset: int, skip: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([part, offset, skip]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int) -> tuple[int, int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        part, offset, skip = json.loads(raw)
        if not all(isinstance(x, int) and x >= 0 for x in (part, offset, skip)) or part > parts:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, f"cursor {cursor[:40]!r} is not one this service handed out", "BadCursor") from None
    return part, offset, skip


# -- routes -----------------------------------------------------------------------------------------

@router.get("/jobs/{job_id}/results", response_model=ResultPage, responses=error_responses(404, 409, 410))
def results(job_id: JobIdPath, limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
            cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] = None,
            principal: Principal = Depends(current_principal), b: Backend = Depends(backend)):
    """One page of a succeeded job's output records, in part order."""
    out = output_of(b, principal, job_id)
    part, offset, skip = decode_cursor(cursor, len(out.parts)) if cursor else (0, 0, 0)
    records, nxt = _page(out, part, offset, skip, limit)
    return {"job_id": job_id, "records": records, "next": nxt}


def _page(out: Output, part: int, offset: int, skip: int, limit: int) -> tuple[list, str | None]:
    """Up to ``limit`` records from the cursor, and the cursor of the record after them (if any)."""
    records: list[dict] = []
    while part < len(out.parts):
        for key, value, at, i in out.records_from(part, offset):
            if at == offset and i < skip:
                continue
            if len(records) == limit:          # a record is left: it starts the next page
                return records, encode_cursor(part, at, i)
            records.append({"key": jsonable(key), "value": jsonable(value)})
        part, offset, skip = part + 1, 0, 0
    return records, None


@router.get("/jobs/{job_id}/results/{key:path}", response_model=Lookup, responses=error_responses(404, 409, 410))
def lookup(job_id: JobIdPath, key: Annotated[str, Path(max_length=4096, description="the key, as text")],
           principal: Principal = Depends(current_principal), b: Backend = Depends(backend)):
    """One key's values, found by seeking: the partitioner's part first, then the other indexed parts."""
    out = output_of(b, principal, job_id)
    scanned: list[str] = []
    for name in _candidates(out, key):
        index = out.index.get(name)
        if index is None:
            values = _scan(out, name, key)
            scanned.append(name)
        else:
            values = _seek(out, name, index, key)
        if values:
            values = [jsonable(v) for v in values]
            return {"job_id": job_id, "key": key, "value": values[0], "values": values, "part": name,
                    "scanned": scanned}
    raise ApiError(404, f"job {job_id}'s output has no key {key!r}", "NoSuchKey")


def _scan(out: Output, name: str, key: str) -> list:
    """Every value of ``key`` in a part without an index (keys compared in their written form)."""
    return [v for k, v in read_part(out.part_path(name)) if (k if out.fmt == "text" else str(k)) == key]


def _candidates(out: Output, key: str) -> list[str]:
    """Parts in the order to try: the one the default hash partitioner sends the key to, first."""
    from mapred.shuffle.partition import hash_partition
    parts = list(out.parts)
    if out.reducers == len(parts) and parts:
        for keytype in {i.get("keytype", "str") for i in out.index.values()} or {"str"}:
            try:
                first = parts[hash_partition(keyindex.typed_key(key, keytype), len(parts))]
            except (ValueError, OverflowError):
                continue
            parts.remove(first)
            parts.insert(0, first)
            break
    return parts


def _seek(out: Output, name: str, index: dict, key: str) -> list:
    try:
        typed = keyindex.typed_key(key, index.get("keytype", "str"))
    except (ValueError, OverflowError):
        return []                      # "abc" cannot be a key of an int-keyed part
    span = keyindex.segment(index, typed)
    if span is None:
        return []
    records = out.read_range(name, *span)
    if out.fmt == "text":
        return keyindex.matches(records, typed, text=True)
    return keyindex.matches(records, typed, text=False)
