"""WebHDFS v1 against the real service: shapes, two-step writes, ranges, errors, permissions, bad input."""
from __future__ import annotations

import hashlib
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from servicekit import hadoop_checksum

from mapred.service import webhdfs

pytestmark = pytest.mark.timeout(240)
W = "/webhdfs/v1"


def put_file(c: httpx.Client, path: str, data: bytes, **params) -> httpx.Response:
    """Both steps of CREATE, as a WebHDFS client makes them."""
    r = c.put(W + path, params={"op": "CREATE", **params})
    if r.status_code != 307:
        return r
    loc = r.headers["location"]
    assert "data=true" in loc and loc.startswith(str(c.base_url).rstrip("/"))
    return c.put(loc, content=data, headers={"content-type": "application/octet-stream"})


def test_create_two_steps_then_status_list_open(service):
    data = os.urandom(3_000_123)
    with service.client() as c:
        r = put_file(c, "/data/ws/a.bin", data)
        assert r.status_code == 201 and r.headers["location"].endswith("/data/ws/a.bin")
        st = c.get(W + "/data/ws/a.bin", params={"op": "GETFILESTATUS"}).json()["FileStatus"]
        assert st["type"] == "FILE" and st["length"] == len(data) and st["pathSuffix"] == ""
        assert st["replication"] == 2 and st["blockSize"] > 0 and st["modificationTime"] > 0
        ls = c.get(W + "/data/ws", params={"op": "LISTSTATUS"}).json()["FileStatuses"]["FileStatus"]
        assert [e["pathSuffix"] for e in ls] == ["a.bin"]
        assert c.get(W + "/data/ws/a.bin", params={"op": "OPEN"}).content == data
        part = c.get(W + "/data/ws/a.bin", params={"op": "OPEN", "offset": 1_048_570, "length": 2_000_000})
        assert part.content == data[1_048_570:3_048_570] and part.headers["content-length"] == str(len(data) - 1_048_570)
        tail = c.get(W + "/data/ws/a.bin", params={"op": "OPEN", "offset": len(data) - 5, "length": 100})
        assert tail.content == data[-5:]
        assert c.get(W + "/data/ws/a.bin", params={"op": "OPEN", "offset": len(data)}).content == b""


def test_checksum_is_hadoops_md5_of_md5_of_crc32c(service):
    """GETFILECHECKSUM equals HDFS's algorithm computed from the bytes, for one block and for several."""
    block = 4 << 20                                   # the fixture's block size
    big = os.urandom(2 * block + 1_000_001)           # three blocks: 4 MiB, 4 MiB, ~1 MB
    small = os.urandom(100_000)
    with service.client() as c:
        assert put_file(c, "/data/ck/big", big).status_code == 201
        assert put_file(c, "/data/ck/big-copy", big).status_code == 201
        assert put_file(c, "/data/ck/small", small).status_code == 201
        assert put_file(c, "/data/ck/empty", b"").status_code == 201
        get = lambda p: c.get(W + p, params={"op": "GETFILECHECKSUM"})  # noqa: E731
        ck = get("/data/ck/big").json()["FileChecksum"]
        assert ck == hadoop_checksum(big, [block, block, len(big) - 2 * block])
        assert ck["algorithm"] == "MD5-of-64MD5-of-65536CRC32C"
        assert get("/data/ck/big-copy").json() == {"FileChecksum": ck}     # same bytes, same layout: equal
        one = get("/data/ck/small").json()["FileChecksum"]
        assert one == hadoop_checksum(small, [len(small)]) and one["algorithm"] == "MD5-of-0MD5-of-65536CRC32C"
        changed = bytearray(small)
        changed[77_777] ^= 1
        assert one != hadoop_checksum(bytes(changed), [len(small)])
        empty = get("/data/ck/empty").json()["FileChecksum"]
        assert empty["algorithm"] == "MD5-of-0MD5-of-0CRC32C" and empty["bytes"].endswith(hashlib.md5().hexdigest())
        r = get("/data/ck")
        assert r.status_code == 404 and r.json()["RemoteException"]["exception"] == "FileNotFoundException"


def _corrupt(store, path: str, block_index: int, at: int, copies: int) -> None:
    """Flip one byte ``at`` bytes into a block in ``copies`` of its replicas, behind the DataNodes' backs."""
    from mapred.storage import blockstore as bs
    block_id, _, _, replicas = store.locations(path)[1][block_index][:4]
    assert len(replicas) >= copies
    for *_, data_dir in replicas[:copies]:
        with open(bs.block_path(data_dir, block_id), "r+b") as f:
            f.seek(at)
            byte = f.read(1)
            f.seek(at)
            f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.timeout(120)
def test_open_sends_no_byte_that_failed_its_checksum(service):
    """OPEN verifies every chunk it sends (once): a bad copy fails over, a range no copy can serve is a
    503 RemoteException before any byte, and a file whose later block has no good copy stops short."""
    from mapred.storage.client import Client
    block = 4 << 20                                   # the fixture's block size
    data = os.urandom(2 * block + 1_000_000)
    bad = block + 3 * 65536 + 100                     # in the 4th chunk of the middle block
    store = Client(service.cluster.storage.namenode_addr)
    with service.client() as c:
        assert put_file(c, "/data/bad/one", data).status_code == 201
        assert put_file(c, "/data/bad/all", data).status_code == 201
        _corrupt(store, "/data/bad/one", 1, bad - block, copies=1)
        _corrupt(store, "/data/bad/all", 1, bad - block, copies=2)
        for offset, length in ((bad - 5, 10), (1_000_003, 2 * block), (bad, None), (bad - 70_000, 140_000)):
            params = {"op": "OPEN", "offset": offset, **({"length": length} if length else {})}
            r = c.get(W + "/data/bad/one", params=params)       # whichever copy is tried first
            assert r.status_code == 200 and r.content == data[offset:offset + length if length else None]
        r = c.get(W + "/data/bad/all", params={"op": "OPEN", "offset": 17, "length": block})
        assert r.content == data[17:17 + block]       # the first block is sound

        def cut_short():
            got = bytearray()
            with service.client() as c2, c2.stream("GET", W + "/data/bad/all", params={"op": "OPEN"}) as r:
                assert r.status_code == 200 and r.headers["content-length"] == str(len(data))
                with pytest.raises(httpx.HTTPError):                # the body ends before its length
                    for piece in r.iter_raw():
                        got += piece
            return bytes(got)
        with ThreadPoolExecutor(1) as pool:           # both wait out the reader's fresh looks at once
            whole = pool.submit(cut_short)
            r = c.get(W + "/data/bad/all", params={"op": "OPEN", "offset": bad - 1000, "length": 2000})
            assert r.status_code == 503, r.text
            assert r.json()["RemoteException"]["exception"] == "RetriableException"
            assert "no live replica" in r.json()["RemoteException"]["message"]
            got = whole.result()
        assert len(got) < bad and got == data[:len(got)]     # a true prefix, never past the bad chunk
    for path in ("/data/bad/one", "/data/bad/all"):
        store.rm(path)
    store.close()


def test_append_mkdirs_rename_delete_summary_checksum(service):
    with service.client() as c:
        assert c.put(W + "/data/ap/sub/deeper", params={"op": "MKDIRS"}).json() == {"boolean": True}
        assert c.put(W + "/data/ap/sub/deeper", params={"op": "MKDIRS"}).json() == {"boolean": True}
        assert put_file(c, "/data/ap/f", b"hello ").status_code == 201
        for piece in (b"big " * 300_000, b"world"):
            r = c.post(W + "/data/ap/f", params={"op": "APPEND"})
            assert r.status_code == 307
            assert c.post(r.headers["location"], content=piece).status_code == 200
        want = b"hello " + b"big " * 300_000 + b"world"
        assert c.get(W + "/data/ap/f", params={"op": "OPEN"}).content == want
        ck = c.get(W + "/data/ap/f", params={"op": "GETFILECHECKSUM"}).json()["FileChecksum"]
        # an append is its own blocks (moved on by concat): 6 bytes, 1.2 MB, 5 bytes
        assert ck == hadoop_checksum(want, [6, 1_200_000, 5])
        cs = c.get(W + "/data/ap", params={"op": "GETCONTENTSUMMARY"}).json()["ContentSummary"]
        assert cs == {"directoryCount": 3, "fileCount": 1, "length": len(want), "quota": -1,
                      "spaceConsumed": 2 * len(want), "spaceQuota": -1}
        r = c.put(W + "/data/ap/f", params={"op": "RENAME", "destination": "/data/ap/sub/g"})
        assert r.json() == {"boolean": True}
        assert c.get(W + "/data/ap/f", params={"op": "GETFILESTATUS"}).status_code == 404
        assert c.put(W + "/data/ap/sub/g", params={"op": "SETREPLICATION", "replication": 1}).json() == {"boolean": True}
        assert c.get(W + "/data/ap/sub/g", params={"op": "GETFILESTATUS"}).json()["FileStatus"]["replication"] == 1
        assert c.put(W + "/data/ap/sub", params={"op": "SETREPLICATION", "replication": 1}).json() == {"boolean": False}
        r = c.delete(W + "/data/ap", params={"op": "DELETE"})
        assert r.status_code == 403 and r.json()["RemoteException"]["exception"] == "PathIsNotEmptyDirectoryException"
        assert c.delete(W + "/data/ap", params={"op": "DELETE", "recursive": "true"}).json() == {"boolean": True}
        assert c.delete(W + "/data/ap", params={"op": "DELETE"}).json() == {"boolean": False}
        # no staged append is left behind
        staged = c.get(W + "/.mapred-service/appends", params={"op": "LISTSTATUS"}).json()
        assert staged["FileStatuses"]["FileStatus"] == []


def test_home_trash_batch_listing_and_noredirect(service, monkeypatch):
    tok = service.token("walt")
    with service.client(tok) as c:
        assert c.get(W + "/", params={"op": "GETHOMEDIRECTORY"}).json() == {"Path": "/user/walt"}
        assert c.get(W, params={"op": "GETHOMEDIRECTORY"}).json() == {"Path": "/user/walt"}
        assert c.get(W + "/x", params={"op": "GETTRASHROOT"}).json() == {"Path": "/user/walt/.Trash"}
        r = c.put(W + "/user/walt/nr", params={"op": "CREATE", "noredirect": "true"})
        assert r.status_code == 200 and "data=true" in r.json()["Location"]
    with service.client() as c:
        for i in range(5):
            assert put_file(c, f"/data/batch/f{i}", b"x").status_code == 201
        r = c.get(W + "/data/batch", params={"op": "LISTSTATUS_BATCH", "startAfter": "f2"}).json()
        names = [e["pathSuffix"] for e in r["DirectoryListing"]["partialListing"]["FileStatuses"]["FileStatus"]]
        assert names == ["f3", "f4"] and r["DirectoryListing"]["remainingEntries"] == 0
        # LISTSTATUS of a file answers the file itself, as Hadoop does (clients such as fsspec rely on it)
        one = c.get(W + "/data/batch/f1", params={"op": "LISTSTATUS"}).json()["FileStatuses"]["FileStatus"]
        assert len(one) == 1 and one[0]["type"] == "FILE" and one[0]["pathSuffix"] == ""
        r = c.get(W + "/data/batch/f1", params={"op": "LISTSTATUS_BATCH"})
        assert r.status_code == 400 and r.json()["RemoteException"]["exception"] == "PathIsNotDirectoryException"


def test_delegation_param_and_redirect_carries_it(service):
    tok = service.token("dora")
    with service.client(None) as c:
        r = c.put(W + "/user/dora/d.txt", params={"op": "CREATE", "delegation": tok})
        assert r.status_code == 307 and f"delegation={tok}" in r.headers["location"]
        assert c.put(r.headers["location"], content=b"via delegation").status_code == 201
        got = c.get(W + "/user/dora/d.txt", params={"op": "OPEN", "delegation": tok})
        assert got.content == b"via delegation"
        r = c.get(W + "/user/dora/d.txt", params={"op": "OPEN"})
        assert r.status_code == 401 and r.json()["RemoteException"]["exception"] == "SecurityException"


def test_permissions_by_role(service):
    alice, bob = service.token("alice"), service.token("bob")
    with service.client(alice) as a, service.client(bob) as b:
        assert put_file(a, "/user/alice/mine", b"secret").status_code == 201
        assert put_file(a, "/tmp/shared-a", b"scratch").status_code == 201
        r = b.get(W + "/user/alice/mine", params={"op": "OPEN"})
        assert r.status_code == 403 and r.json()["RemoteException"]["exception"] == "AccessControlException"
        assert "bob" in r.json()["RemoteException"]["message"]
        assert put_file(b, "/user/alice/planted", b"x").status_code == 403
        assert b.delete(W + "/user/alice/mine", params={"op": "DELETE"}).status_code == 403
        r = b.put(W + "/tmp/shared-a", params={"op": "RENAME", "destination": "/user/alice/x"})
        assert r.status_code == 403
        assert put_file(b, "/data/not-bobs", b"x").status_code == 403
        assert b.get(W + "/tmp/shared-a", params={"op": "OPEN"}).content == b"scratch"
    with service.client() as admin:
        assert admin.get(W + "/user/alice/mine", params={"op": "OPEN"}).content == b"secret"


@pytest.mark.parametrize("method,url,status,exception", [
    ("GET", W + "/x?op=FROB", 400, "IllegalArgumentException"),
    ("GET", W + "/x", 400, "IllegalArgumentException"),
    ("PUT", W + "/x?op=OPEN", 400, "IllegalArgumentException"),
    ("GET", W + "/a/%2E%2E/etc?op=GETFILESTATUS", 400, "IllegalArgumentException"),
    ("GET", W + "/a/%00b?op=GETFILESTATUS", 400, "IllegalArgumentException"),
    ("GET", W + "/no/such?op=GETFILESTATUS", 404, "FileNotFoundException"),
    ("GET", W + "/x?op=OPEN&offset=-1", 400, "IllegalArgumentException"),
    ("PUT", W + "/x?op=RENAME", 400, "IllegalArgumentException"),
    ("PATCH", W + "/x?op=OPEN", 405, "UnsupportedOperationException"),
    ("GET", "/webhdfs/v2/x?op=OPEN", 404, "FileNotFoundException"),
])
def test_bad_requests_answer_remote_exceptions(service, method, url, status, exception):
    with service.client() as c:
        r = c.request(method, url)
        assert r.status_code == status, r.text
        body = r.json()["RemoteException"]
        assert body["exception"] == exception and body["message"] and body["javaClassName"].endswith(exception)
    assert "op" not in url or "FROB" not in url or "FROB" in body["message"]


def test_create_existing_without_overwrite_keeps_the_file(service):
    with service.client() as c:
        assert put_file(c, "/data/keep", b"original").status_code == 201
        r = c.put(W + "/data/keep", params={"op": "CREATE"})
        assert r.status_code == 403 and r.json()["RemoteException"]["exception"] == "FileAlreadyExistsException"
        r = c.put(W + "/data/keep", params={"op": "CREATE", "data": "true"}, content=b"clobber")
        assert r.status_code == 403
        assert c.get(W + "/data/keep", params={"op": "OPEN"}).content == b"original"
        assert put_file(c, "/data/keep", b"replaced", overwrite="true").status_code == 201
        assert c.get(W + "/data/keep", params={"op": "OPEN"}).content == b"replaced"


def _raw_request(url: str, head: bytes, body: bytes = b"", then_close: bool = True) -> socket.socket:
    host, port = url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(head + body)
    if then_close:
        s.close()
    return s


def _read_reply(s: socket.socket) -> str:
    """Everything the service sends until it closes the connection (or 30 s pass)."""
    chunks = []
    while True:
        try:
            data = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not data:
            break
        chunks.append(data)
        text = b"".join(chunks).decode(errors="replace")
        head, sep, body = text.partition("\r\n\r\n")
        length = [int(line.split(":")[1]) for line in head.lower().splitlines() if line.startswith("content-length")]
        if sep and length and len(body.encode()) >= length[0]:
            break
    return b"".join(chunks).decode(errors="replace")


def test_body_that_stops_halfway_leaves_nothing(service):
    with service.client() as c:
        assert put_file(c, "/data/half-old", b"keep me").status_code == 201
    for path in ("/data/half-new", "/data/half-old"):
        head = (f"PUT {W}{path}?op=CREATE&data=true&overwrite=true HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {service.admin_token}\r\nContent-Length: 10000000\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode()
        _raw_request(service.url, head, os.urandom(3_000_000))
    with service.client() as c:
        deadline = time.monotonic() + 30
        while c.get(W + "/data/half-new", params={"op": "GETFILESTATUS"}).status_code != 404:
            assert time.monotonic() < deadline
        assert c.get(W + "/data/half-old", params={"op": "OPEN"}).content == b"keep me"
        assert c.get("/readyz").status_code == 200


def test_huge_declared_body_is_413_before_reading(service):
    head = (f"PUT {W}/data/huge?op=CREATE&data=true HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {service.admin_token}\r\nContent-Length: {10 << 30}\r\n\r\n").encode()
    s = _raw_request(service.url, head, b"x" * 1000, then_close=False)
    reply = _read_reply(s)
    s.close()
    assert reply.startswith("HTTP/1.1 413") and "RemoteException" in reply and "limit" in reply
    with service.client() as c:
        assert c.get(W + "/data/huge", params={"op": "GETFILESTATUS"}).status_code == 404
        assert 'mapred_http_refusals_total{reason="too_large"}' in c.get("/metrics").text


def _slow_upload(service, path: str) -> socket.socket:
    head = (f"PUT {W}{path}?op=CREATE&data=true&overwrite=true HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {service.admin_token}\r\nContent-Length: 1000\r\n\r\n").encode()
    return _raw_request(service.url, head, b"x" * 10, then_close=False)


def test_slow_client_gets_408_and_does_not_block_others(service):
    slow = _slow_upload(service, "/data/slow")
    try:
        with service.client() as c:
            for _ in range(5):
                assert c.get(W + "/", params={"op": "LISTSTATUS"}).status_code == 200
        reply = _read_reply(slow)      # after the body timeout (3 s here)
        assert reply.startswith("HTTP/1.1 408") and "RemoteException" in reply
    finally:
        slow.close()
    with service.client() as c:
        assert c.get(W + "/data/slow", params={"op": "GETFILESTATUS"}).status_code == 404


def test_too_many_in_flight_is_503_with_retry_after(service):
    from servicekit import MAX_IN_FLIGHT
    held = []
    try:
        with service.client() as c:
            for i in range(MAX_IN_FLIGHT):
                held.append(_slow_upload(service, f"/data/hold-{i}"))
            deadline = time.monotonic() + 30
            while True:      # the held requests reach the app in their own time: poll for the refusal
                r = c.get(W + "/", params={"op": "LISTSTATUS"})
                if r.status_code == 503 or time.monotonic() > deadline:
                    break
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["RemoteException"]["exception"] == "RetriableException"
            assert c.get("/healthz").status_code == 200           # probes are exempt
    finally:
        for s in held:
            s.close()
    with service.client() as c:
        deadline = time.monotonic() + 30
        while c.get(W + "/", params={"op": "LISTSTATUS"}).status_code != 200:
            assert time.monotonic() < deadline
        assert 'mapred_http_refusals_total{reason="overloaded"}' in c.get("/metrics").text


def test_chunked_body_over_the_limit_is_cut_and_nothing_stored(service):
    """A body with no Content-Length is counted as it comes: past the limit it is 413 and aborted."""
    import asyncio

    from mapred.service.app import create_app
    from mapred.service.settings import ServiceSettings
    app = create_app(ServiceSettings(namenode=service.cluster.storage.namenode_addr, master=service.master,
                                     token_file=service.token_file, max_body_bytes=3_000_000))

    async def go():
        async def body():
            for _ in range(10):
                yield b"z" * 1_000_000
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc",
                                     headers={"Authorization": f"Bearer {service.admin_token}"}) as c:
            r = await c.put(W + "/data/chunked", params={"op": "CREATE", "data": "true"}, content=body())
            assert r.status_code == 413 and "limit of 3000000 bytes" in r.json()["RemoteException"]["message"]
    asyncio.run(go())
    app.state.backend.close()
    with service.client() as c:
        assert c.get(W + "/data/chunked", params={"op": "GETFILESTATUS"}).status_code == 404


@given(st.one_of(st.from_regex(webhdfs.PATH_SCHEMA["pattern"], fullmatch=True),
                 st.text(st.sampled_from("ab./\x00"), max_size=12),
                 st.lists(st.sampled_from(["a", ".", "..", "...", "", "x" * 255, "y" * 256]), max_size=4)
                 .map("/".join)))
@settings(max_examples=300, deadline=None)
def test_path_schema_is_exactly_what_store_path_takes(raw):
    """The OpenAPI pattern of ``<path>`` and ``store_path`` agree, so the fuzzer's checks mean something."""
    import re

    from mapred.service.errors import ApiError
    documented = len(raw) <= webhdfs.PATH_SCHEMA["maxLength"] and re.fullmatch(webhdfs.PATH_SCHEMA["pattern"], raw)
    try:
        webhdfs.store_path(raw)
        taken = True
    except ApiError as exc:
        assert exc.status == 400
        taken = False
    assert bool(documented) == taken, raw
