"""Clients no one here wrote, and many at once: fsspec's WebHDFS round trip; 32 concurrent clients.

The load test runs the 30 s the issue names, in CI too (``MAPRED_LOAD_SECONDS`` changes it).
"""
from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from urllib.parse import quote

import fsspec
import httpx
import pytest
from jobkit import wordcount, write_words
from servicekit import hadoop_checksum

import mapred
from mapred.io.outputs import Result

W = "/webhdfs/v1"
MB = 1 << 20


def _fs(service, token):
    host, port = service.url.split("//")[1].split(":")
    return fsspec.filesystem("webhdfs", host=host, port=int(port), token=token, skip_instance_cache=True,
                             use_listings_cache=False)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fsspec_round_trips_200_mb(service):
    fs = _fs(service, service.token("fay"))
    data = random.Random(7).randbytes(200 * MB)
    with fs.open("/user/fay/big.bin", "wb", block_size=16 * MB) as f:
        for i in range(0, len(data), 7 * MB):          # uneven pieces: fsspec rebuffers them into APPENDs
            f.write(data[i:i + 7 * MB])
    assert fs.info("/user/fay/big.bin")["size"] == len(data)
    assert fs.ls("/user/fay") == ["/user/fay/big.bin"]
    for start, end in [(0, 10), (MB - 3, MB + 5), (123_456_789, 123_456_789 + 3 * MB), (len(data) - 7, len(data))]:
        assert fs.cat_file("/user/fay/big.bin", start=start, end=end) == data[start:end]
    h = hashlib.sha256()
    with fs.open("/user/fay/big.bin", "rb", block_size=16 * MB) as f:
        while piece := f.read(16 * MB):
            h.update(piece)
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    # the checksum is HDFS's MD5-of-MD5-of-CRC32C over the blocks the store made (fsspec's APPENDs
    # are blocks of their own), computed here from the bytes
    lengths = [b[2] for b in service.cluster.storage.client().locations("/user/fay/big.bin")[1]]
    assert fs.ukey("/user/fay/big.bin") == hadoop_checksum(data, lengths)
    fs.mv("/user/fay/big.bin", "/user/fay/moved.bin")
    assert not fs.exists("/user/fay/big.bin") and fs.info("/user/fay/moved.bin")["size"] == len(data)
    fs.makedirs("/user/fay/d/e", exist_ok=True)
    fs.pipe_file("/user/fay/d/e/small", b"tiny")
    assert fs.cat_file("/user/fay/d/e/small") == b"tiny"
    assert fs.content_summary("/user/fay")["length"] == len(data) + 4
    fs.rm("/user/fay/moved.bin")
    fs.rm("/user/fay/d", recursive=True)
    # WebHDFS DELETE goes to the caller's trash, as `mapred fs rm` does (docs/cleanup.md)
    assert fs.ls("/user/fay") == ["/user/fay/.Trash"]
    assert fs.info("/user/fay/.Trash/Current/user/fay/moved.bin")["size"] == len(data)
    assert fs.cat_file("/user/fay/.Trash/Current/user/fay/d/e/small") == b"tiny"
    assert fs.home_directory() == "/user/fay"
    with pytest.raises(PermissionError):
        fs.cat_file("/user/alice-private/x")  # another user's home is refused, as AccessControlException
    with pytest.raises(FileNotFoundError):
        fs.info("/user/fay/nothing")


LOAD_SECONDS = float(os.environ.get("MAPRED_LOAD_SECONDS", "30"))


def _load(service, seconds: float) -> dict:
    """32 clients each writing, reading and checking their own files, and one querying job results."""
    store = service.cluster.storage.client()
    write_words(store, "/user/lou/words.txt", 3000, seed=11, vocab=400)
    with mapred.connect(service.master, user="lou") as cluster:
        result = wordcount(reducers=2).run([service.store_uri + "/user/lou/words.txt"],
                                           service.store_uri + "/user/lou/wc", overwrite=True, cluster=cluster)
    committed = dict(Result(result.path))
    keys = list(committed)
    tokens = [service.token(f"load{i}") for i in range(32)]
    lou = service.token("lou")
    stop = time.monotonic() + seconds
    errors: list[str] = []
    counts = {"files": 0, "lookups": 0}
    lock = threading.Lock()

    def recorded(fn):
        """A client's exception (a dropped connection, a timeout) is an error of the run, not a lost thread."""
        def run(*args):
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - every failure is reported by the assertion below
                with lock:
                    errors.append(f"{fn.__name__}{args}: {type(exc).__name__}: {exc}")
        return run

    def writer(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {tokens[i]}"}, timeout=60) as c:
            n = 0
            while time.monotonic() < stop:
                data = rng.randbytes(rng.randrange(1, 600_000))
                path = f"/user/load{i}/f{n % 3}"
                r = c.put(W + path, params={"op": "CREATE", "overwrite": "true"})
                r2 = c.put(r.headers.get("location", ""), content=data) if r.status_code == 307 else r
                got = c.get(W + path, params={"op": "OPEN"})
                if r2.status_code != 201 or got.status_code != 200 or got.content != data:
                    with lock:
                        errors.append(f"client {i} file {n}: {r.status_code}/{r2.status_code}/{got.status_code}, "
                                      f"{len(got.content)} of {len(data)} bytes")
                    return
                n += 1
            with lock:
                counts["files"] += n

    def querier() -> None:
        rng = random.Random(99)
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {lou}"}, timeout=60) as c:
            while time.monotonic() < stop:
                key = rng.choice(keys)
                r = c.get(f"/api/v1/jobs/{result.job_id}/results/{quote(key, safe='').replace('.', '%2E')}")
                if r.status_code != 200 or r.json()["value"] != committed[key]:
                    with lock:
                        errors.append(f"lookup {key!r}: {r.status_code} {r.text[:200]}")
                    return
                with lock:
                    counts["lookups"] += 1

    threads = [threading.Thread(target=recorded(writer), args=(i,)) for i in range(32)]
    threads.append(threading.Thread(target=recorded(querier)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert errors == [], errors[:5]
    assert counts["files"] >= 32 and counts["lookups"] >= 1
    return counts


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_32_clients_read_and_write_with_zero_errors(service):
    _load(service, LOAD_SECONDS)
