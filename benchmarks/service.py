"""The HTTP service against the store's own client: WebHDFS upload/download, and requests under load.

    python benchmarks/service.py [--size-mb 1024] [--repeat 2] [--seconds 10] [--clients 32]
                                 [--servers uvloop/httptools,asyncio/h11]

Starts a NameNode, 2 DataNodes (replication 2, 64 MiB blocks), a master, a
worker and ``mapred serve`` on this machine.  Then, interleaved ``--repeat``
times (best kept; the default is the issue's 1 GB file):

- upload of one ``--size-mb`` file: WebHDFS two-step CREATE with the body
  streamed from disk, against ``Client.put`` (what ``mapred fs put`` runs);
- download: WebHDFS OPEN streamed into a new local file (httpx, and ``curl
  -o``), against ``Client.get`` into a new local file (what ``mapred fs get``
  runs, with the allocator setting the CLI and the service both make, see
  ``mapred/storage/malloc.py``), and "2 ranges": two GETs of half the file
  each (``offset``/``length``) written into one file at once, the parallel
  download of aria2 or s5cmd, as ``Client.get`` reads ahead in threads.
  Goal: WebHDFS >= 0.7x of the direct client.
  The service's CPU seconds per GiB are printed beside each, the steadier
  number on a shared machine.  Each WebHDFS transfer runs through ``mapred
  serve`` on every ``--servers`` loop/http pair (restarted between them,
  outside the clock), so the C pair and uvicorn's pure-Python one are
  compared in the same run.
- the client's own ceiling: the same clients downloading the same bytes from
  a bare HTTP server that ``sendfile``s the source file (no Python per byte,
  no checksums).  Whatever a client loses there, no service can win back:
  the gap between a service row and its ceiling row is the service's.

Every copy is compared with the source (xxh3-128, after each timed run and
outside the clock), and removed before the next run, so each run writes a
new file as a first download does.

And for ``--seconds`` with ``--clients`` concurrent asyncio clients each:
requests per second with p50/p99 latency of GETFILESTATUS, and of a result
lookup by key in a committed word count.  Every answer is checked, so a fast
wrong answer cannot count.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import quote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import httpx  # noqa: E402
import psutil  # noqa: E402
import xxhash  # noqa: E402
from _common import load_example  # noqa: E402

from mapred.runtime.procs import Cluster  # noqa: E402
from mapred.service.tokens import TokenStore  # noqa: E402
from mapred.storage.malloc import keep_read_buffers  # noqa: E402

MB = 1 << 20
W = "/webhdfs/v1"


def make_file(path: str, size: int) -> str:
    pattern = os.urandom(16 * MB)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            piece = pattern[:min(left, len(pattern))]
            f.write(piece)
            left -= len(piece)
    return digest_of(path)


def digest_of(path: str) -> str:
    """xxh3-128 of a file (about 10x faster than SHA-256: checking every copy of 1 GB stays cheap)."""
    h = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as f:
        while piece := f.read(8 * MB):
            h.update(piece)
    return h.hexdigest()


def curl_put(url: str, token: str, src: str, path: str) -> None:
    """``curl -L -T``: the two steps, the body streamed from the file by a client written in C."""
    out = subprocess.run(["curl", "-sS", "-f", "-L", "-T", src, "-H", f"Authorization: Bearer {token}",
                          "-H", "Content-Type: application/octet-stream", "-o", "/dev/null", "-w", "%{http_code}",
                          f"{url}{W}{path}?op=CREATE&overwrite=true"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "201", out


def curl_get(url: str, token: str, path: str, local: str) -> None:
    """``curl -o``: the download written to a local file, as ``mapred fs get`` writes it."""
    curl_download(f"{url}{W}{path}?op=OPEN", token, local)


def curl_download(url: str, token: str, local: str) -> None:
    subprocess.run(["curl", "-sS", "-f", "-H", f"Authorization: Bearer {token}", "-o", local, url], check=True)


def webhdfs_put(url: str, token: str, src: str, path: str) -> None:
    """Both steps of CREATE with httpx, the body streamed from the file in 4 MiB pieces."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=600) as c:
        r = c.put(url + W + path, params={"op": "CREATE", "overwrite": "true"})
        assert r.status_code == 307, r.text

        def body():
            with open(src, "rb") as f:
                while piece := f.read(4 * MB):
                    yield piece
        r = c.put(r.headers["location"], content=body(), headers={"content-type": "application/octet-stream"})
        assert r.status_code == 201, r.text


def webhdfs_get(url: str, token: str, path: str, local: str) -> None:
    """OPEN streamed into a local file by httpx (64 KiB reads, its default)."""
    httpx_download(url + W + path, token, local, {"op": "OPEN"})


def httpx_download(url: str, token: str, local: str, params=None) -> None:
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=600) as c, open(local, "wb") as out:
        with c.stream("GET", url, params=params) as r:
            assert r.status_code == 200
            for piece in r.iter_raw():
                out.write(piece)


def _get_head(sock: socket.socket, parts, target: str, token: str) -> tuple[str, bytes]:
    """Send a bare GET and read to the end of its headers: ``(head text, body bytes so far)``."""
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
                 f"Connection: close\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        got = sock.recv(65536)
        assert got, "the server closed before its headers ended"
        head += got
    head, _, body = head.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def lean_download(url: str, token: str, local: str) -> None:
    """The least an HTTP/1.1 client can do: one GET on a raw socket, the body read into a reused
    4 MiB buffer and written out as it comes (curl reads and writes 16 KiB at a time, httpx 64 KiB
    through Python).  Enough for these answers (a status line, headers, a Content-Length body)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock, open(local, "wb", buffering=0) as out:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        head, body = _get_head(sock, parts, target, token)
        lines = head.split("\r\n")
        assert lines[0].split()[1] == "200", lines[0]
        length = next(int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length")
        out.write(body)
        left = length - len(body)
        buf = memoryview(bytearray(4 * MB))
        while left > 0:
            n = sock.recv_into(buf, min(left, len(buf)))
            assert n, f"the body stopped {left} bytes short"
            out.write(buf[:n])
            left -= n


def ranged_download(url: str, token: str, local: str, size: int, streams: int = 2) -> None:
    """``streams`` lean GETs at once, each of one range (WebHDFS ``offset``/``length``), written
    with ``pwrite`` into one local file: the parallel download a tool like aria2 or s5cmd makes,
    and what ``mapred fs get`` does with its read-ahead threads. Each socket and write releases
    the GIL, so the streams run side by side."""
    with open(local, "wb") as f:
        f.truncate(size)
    step = -(-size // streams)
    failures = []

    def one(start: int) -> None:
        try:
            length = min(step, size - start)
            parts = urlsplit(f"{url}&offset={start}&length={length}")
            with socket.create_connection((parts.hostname, parts.port)) as sock:
                fd = os.open(local, os.O_WRONLY)
                try:
                    head, body = _get_head(sock, parts, f"{parts.path}?{parts.query}", token)
                    assert head.split(" ", 2)[1] == "200", head[:80]
                    pos = start + os.pwrite(fd, body, start)
                    end = start + length
                    buf = memoryview(bytearray(4 * MB))
                    while pos < end:
                        n = sock.recv_into(buf, min(end - pos, len(buf)))
                        assert n, f"the range at {start} stopped {end - pos} bytes short"
                        pos += os.pwrite(fd, buf[:n], pos)
                finally:
                    os.close(fd)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            failures.append(exc)
    threads = [threading.Thread(target=one, args=(i * step,)) for i in range(streams) if i * step < size]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


class SendfileServer:
    """A bare HTTP/1.1 server on loopback that ``sendfile``s one local file to every GET.

    The clients' ceiling: no Python touches a byte and nothing is checked, so
    a client's speed here is what it can take at all on this machine.
    """

    def __init__(self, path: str) -> None:
        self.path, self.size = path, os.path.getsize(path)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:                      # closed: the benchmark is over
                return
            try:
                self._answer(conn)
            except OSError:                      # that client went away: serve the next one
                pass

    def _answer(self, conn: socket.socket) -> None:
        with conn, open(self.path, "rb") as f:
            request = b""
            while b"\r\n\r\n" not in request:
                got = conn.recv(65536)
                if not got:
                    break
                request += got
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         f"Content-Length: {self.size}\r\nConnection: close\r\n\r\n".encode())
            sent = 0
            while sent < self.size:
                sent += os.sendfile(conn.fileno(), f.fileno(), sent, self.size - sent)

    def close(self) -> None:
        self.sock.close()


def best_of(repeat: int, runs: dict, cluster, check=None) -> dict:
    """Each named ``(server, fn)`` run ``repeat`` times, interleaved: ``{name: (best s, service CPU s)}``.

    ``server`` names the service's loop/http pair (None: no service involved);
    the service is restarted with it before the clock starts when it changes.
    The service's CPU time (all its threads, from /proc) is the steadier number
    on a shared machine: wall time depends on what else runs, CPU per byte less.
    ``check(name)`` runs after each timed run, outside the clock.
    """
    best = {name: (float("inf"), 0.0) for name in runs}
    for _ in range(repeat):
        for name, (server, fn) in runs.items():
            if server:
                use_server(cluster, server)
            service = psutil.Process(cluster.service_proc.pid)
            os.sync()
            cpu = sum(service.cpu_times()[:2])
            start = time.perf_counter()
            fn(cluster.service_url)
            took = time.perf_counter() - start
            if took < best[name][0]:
                best[name] = (took, sum(service.cpu_times()[:2]) - cpu)
            if check:
                check(name)
    return best


def use_server(cluster, server: str) -> None:
    """Run ``mapred serve`` with this ``loop/http`` pair (``uvloop/httptools``, ``asyncio/h11``)."""
    loop, http = server.split("/")
    if cluster.env.get("MAPRED_SERVICE_LOOP") == loop and cluster.env.get("MAPRED_SERVICE_HTTP") == http:
        return
    cluster.service_proc.terminate()
    cluster.service_proc.wait(30)
    cluster.env.update(MAPRED_SERVICE_LOOP=loop, MAPRED_SERVICE_HTTP=http)
    cluster.start_service()


async def load(url: str, token: str, clients: int, seconds: float, make_request, check) -> dict:
    """``clients`` concurrent tasks issuing requests for ``seconds``: rps, p50, p99, errors."""
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60,
                                 limits=limits) as c:
        async def one(i: int) -> None:
            nonlocal errors
            rng = random.Random(i)
            while time.monotonic() < stop:
                method, path, params, want = make_request(rng)
                start = time.perf_counter()
                try:
                    r = await c.request(method, path, params=params)
                except httpx.TransportError:          # a dropped connection is an error, not the end
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - start)
                if not check(r, want):
                    errors += 1
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(clients)))
        took = time.perf_counter() - started
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"requests": len(latencies), "rps": len(latencies) / took, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="the file's size (default: the issue's 1 GB)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--servers", default="uvloop/httptools,asyncio/h11",
                    help="loop/http pairs of mapred serve to compare in the same run (the first serves the queries)")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="mapred-bench-service-", dir=args.dir)
    token_file = os.path.join(root, "tokens.json")
    token, _ = TokenStore(token_file).create("bench", "admin")
    src = os.path.join(root, "input.bin")
    digest = make_file(src, args.size_mb * MB)
    try:
        with Cluster(os.path.join(root, "cluster"), workers=1, slots=2, datanodes=2, service=True,
                     token_file=token_file, block_size=64 * MB, dead_timeout=30,
                     env={"MAPRED_SERVICE_MAX_IN_FLIGHT": str(4 * args.clients)}) as cluster:
            from mapred.storage.client import Client
            store = Client(cluster.storage.namenode_addr)
            transfer(args, store, cluster, token, src, digest)
            use_server(cluster, args.servers.split(",")[0])
            queries(args, cluster, store, cluster.service_url, token)
            store.close()
    finally:                       # the source, the copies and the cluster's blocks: gigabytes
        shutil.rmtree(root, ignore_errors=True)


def transfer(args, store, cluster, token: str, src: str, digest: str) -> None:
    """Interleaved runs of each way in and out, from and to local files as ``mapred fs put/get`` do,
    through the service on each ``--servers`` pair; every copy's bytes are checked after its run."""
    size = args.size_mb * MB
    out = os.path.join(os.path.dirname(src), "out-{}.bin")
    keep_read_buffers()     # what `mapred fs get` does before Client.get (and `mapred serve` at start)
    puts = {"put  Client.put (mapred fs put)": (None, lambda url: store.put(src, "/bench/direct", overwrite=True))}
    gets = {"get  Client.get (mapred fs get)": (None, lambda url: store.get("/bench/direct", out.format("direct")))}
    copies = {"get  Client.get (mapred fs get)": "direct"}
    ceiling = SendfileServer(src)
    for server in args.servers.split(","):
        tag = server.replace("/", "-")
        puts[f"put  WebHDFS CREATE, httpx  [{server}]"] = (
            server, lambda url, tag=tag: webhdfs_put(url, token, src, f"/bench/httpx-{tag}"))
        gets[f"get  WebHDFS OPEN, httpx    [{server}]"] = (
            server, lambda url, tag=tag: webhdfs_get(url, token, f"/bench/httpx-{tag}", out.format(f"httpx-{tag}")))
        copies[f"get  WebHDFS OPEN, httpx    [{server}]"] = f"httpx-{tag}"
        gets[f"get  WebHDFS OPEN, lean     [{server}]"] = (
            server, lambda url, tag=tag: lean_download(f"{url}{W}/bench/httpx-{tag}?op=OPEN", token,
                                                       out.format(f"lean-{tag}")))
        copies[f"get  WebHDFS OPEN, lean     [{server}]"] = f"lean-{tag}"
        gets[f"get  WebHDFS OPEN, 2 ranges [{server}]"] = (
            server, lambda url, tag=tag: ranged_download(f"{url}{W}/bench/httpx-{tag}?op=OPEN", token,
                                                         out.format(f"ranges-{tag}"), size))
        copies[f"get  WebHDFS OPEN, 2 ranges [{server}]"] = f"ranges-{tag}"
        if shutil.which("curl"):
            puts[f"put  WebHDFS CREATE, curl   [{server}]"] = (
                server, lambda url, tag=tag: curl_put(url, token, src, f"/bench/curl-{tag}"))
            gets[f"get  WebHDFS OPEN, curl -o  [{server}]"] = (
                server, lambda url, tag=tag: curl_get(url, token, f"/bench/curl-{tag}", out.format(f"curl-{tag}")))
            copies[f"get  WebHDFS OPEN, curl -o  [{server}]"] = f"curl-{tag}"
    gets["ceil httpx from a sendfile server"] = (None, lambda url: httpx_download(ceiling.url, token,
                                                                                  out.format("ceil-httpx")))
    copies["ceil httpx from a sendfile server"] = "ceil-httpx"
    gets["ceil lean from a sendfile server"] = (None, lambda url: lean_download(ceiling.url, token,
                                                                                out.format("ceil-lean")))
    copies["ceil lean from a sendfile server"] = "ceil-lean"
    if shutil.which("curl"):
        gets["ceil curl -o from a sendfile server"] = (None, lambda url: curl_download(ceiling.url, token,
                                                                                       out.format("ceil-curl")))
        copies["ceil curl -o from a sendfile server"] = "ceil-curl"

    def check(name: str) -> None:
        """The copy just written equals the source; then it goes, so the next run writes a new file."""
        local = out.format(copies[name])
        assert digest_of(local) == digest, f"{name}: the bytes differ"
        os.remove(local)
    try:
        up = best_of(args.repeat, puts, cluster)
        down = best_of(args.repeat, gets, cluster, check)
    finally:
        ceiling.close()
    print(f"file {args.size_mb} MB, replication 2, 64 MiB blocks, best of {args.repeat} (interleaved); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          "service CPU: seconds the service process used per GiB moved; [loop/http] of mapred serve; "
          "ceil: the client's own limit, no service")
    print(f"{'transfer':46} {'seconds':>8} {'MB/s':>8} {'ratio':>7} {'service CPU s/GiB':>18}")
    for results in (up, down):
        names = list(results)
        base = results[names[0]][0]
        for name in names:
            took, cpu = results[name]
            cpu_text = "-" if "Client" in name or name.startswith("ceil") else f"{cpu / (size / (1 << 30)):.2f}"
            print(f"{name:46} {took:8.2f} {size / MB / took:8.0f} {base / took:6.2f}x {cpu_text:>18}")


def queries(args, cluster, store, url: str, token: str) -> None:
    import mapred
    from mapred.io.outputs import Result
    rng = random.Random(1)
    words = [f"w{i}" for i in range(20000)]
    store.write_bytes("/bench/words.txt", "\n".join(" ".join(rng.choice(words) for _ in range(8))
                                                     for _ in range(100000)).encode(), overwrite=True)
    job = load_example("wordcount").job
    with mapred.connect(cluster.master_addr, user="bench") as c:
        result = job.run([cluster.namenode_uri() + "/bench/words.txt"], cluster.namenode_uri() + "/bench/wc",
                         overwrite=True, cluster=c)
    committed = dict(Result(result.path))
    keys = list(committed)
    for i in range(50):
        store.write_bytes(f"/bench/stat/f{i}", b"x" * i, overwrite=True)

    def stat_request(r):
        i = r.randrange(50)
        return "GET", f"{W}/bench/stat/f{i}", {"op": "GETFILESTATUS"}, i

    def stat_ok(resp, want):
        return resp.status_code == 200 and resp.json()["FileStatus"]["length"] == want

    def lookup_request(r):
        k = r.choice(keys)
        return "GET", f"/api/v1/jobs/{result.job_id}/results/{quote(k, safe='')}", None, committed[k]

    def lookup_ok(resp, want):
        return resp.status_code == 200 and resp.json()["value"] == want

    print(f"\n{args.clients} concurrent clients, {args.seconds:g} s each "
          f"(word count of {len(keys)} keys in {len(Result(result.path).part_files())} parts)")
    print(f"{'request':28} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, make, check in (("GETFILESTATUS", stat_request, stat_ok), ("result lookup by key", lookup_request,
                                                                          lookup_ok)):
        r = asyncio.run(load(url, token, args.clients, args.seconds, make, check))
        print(f"{name:28} {r['requests']:9d} {r['rps']:8.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['errors']:7d}")


if __name__ == "__main__":
    main()
