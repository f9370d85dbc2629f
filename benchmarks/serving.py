"""Online prediction: ``mapred serve`` (OIP v2 infer) against a bare FastAPI endpoint calling scikit-learn.

One run trains a logistic regression, registers it twice in a local registry
(``lr``: no micro-batching; ``lr_batched``: ``max_batch_size`` 1024 rows,
``max_batch_wait_ms`` 2), starts ``mapred serve`` on it and, as the peer, a
bare FastAPI app (one uvicorn process, like ours) whose ``POST /predict``
calls ``sklearn.linear_model.LogisticRegression.predict`` on the same
coefficients. Then, for rows per request in ``--batches`` and concurrent
clients in ``--clients``, an asyncio httpx load generator (one process, the
same for every server) sends requests for ``--seconds`` each and reports
requests/s and p50/p99 latency; configurations are interleaved, so load
drift on a shared machine hits every server alike.

    python benchmarks/serving.py                       # batch 1 and 64, 1 and 32 clients, 3 s each
    python benchmarks/serving.py --seconds 5 --rounds 2

Goal (the issue's): with batching on at 32 clients, >= 1x the peer's
throughput and p99 <= 2x the peer's.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import table

PEER = textwrap.dedent('''
    import sys, numpy as np, uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from sklearn.linear_model import LogisticRegression
    d = np.load(sys.argv[1])
    clf = LogisticRegression()
    clf.coef_, clf.intercept_, clf.classes_ = d["coef"], d["intercept"], d["classes"]
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request):
        body = await request.json()
        X = np.asarray(body["inputs"], dtype=np.float64)
        return JSONResponse({"label": clf.predict(X).tolist()})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
''')


def free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url: str, timeout: float = 60.0) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def train(d: int, dirpath: str):
    import models
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, d))
    y = (X @ rng.normal(size=d) + 0.3 * rng.normal(size=len(X)) > 0).astype(np.int64)
    clf = models.LogisticRegression(epochs=10, seed=0).fit(X, y, workers=1)
    reg = models.Registry(os.path.join(dirpath, "registry"))
    for name, opts in [("lr", {}), ("lr_batched", {"max_batch_size": 1024, "max_batch_wait_ms": 2.0,
                                                   "max_queue": 4096})]:
        v = reg.register(clf, name)
        reg.set_alias(name, "champion", v.version)
        if opts:
            reg.set_serving_options(name, **opts)
    np.savez(os.path.join(dirpath, "peer.npz"), coef=np.asarray(clf.coef_).reshape(1, -1),
             intercept=np.atleast_1d(clf.intercept_), classes=np.asarray(clf.classes_))
    return clf, X, reg.root


def start_servers(dirpath: str, registry: str):
    from mapred.service.tokens import TokenStore
    token_file = os.path.join(dirpath, "tokens.json")
    token, _ = TokenStore(token_file).create("bench", "user")
    env = {**os.environ, "MAPRED_REGISTRY": registry, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    ready = os.path.join(dirpath, "serve.url")
    ours = subprocess.Popen([sys.executable, "-m", "mapred", "serve", "--port", "0", "--ready-file", ready,
                             "--token-file", token_file, "--max-in-flight", "256"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(dirpath, "serve.log"), "wb"))
    peer_port = free_port()
    peer_py = os.path.join(dirpath, "peer.py")
    with open(peer_py, "w") as f:
        f.write(PEER)
    peer = subprocess.Popen([sys.executable, peer_py, os.path.join(dirpath, "peer.npz"), str(peer_port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not os.path.exists(ready):
        if ours.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mapred serve did not start; see {dirpath}/serve.log")
        time.sleep(0.1)
    url = open(ready).read().strip()
    wait_http(url + "/v2/health/live")
    wait_http(f"http://127.0.0.1:{peer_port}/docs")
    return ours, peer, url, f"http://127.0.0.1:{peer_port}", token


def request_for(kind: str, rows: np.ndarray, model: str) -> tuple[str, bytes]:
    if kind == "peer":
        return "/predict", json.dumps({"inputs": rows.tolist()}).encode()
    return f"/v2/models/{model}/infer", json.dumps({"inputs": [{
        "name": "input", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}],
        "outputs": [{"name": "label"}]}).encode()   # what the peer returns


async def load(base: str, token: str, path: str, payloads: list, clients: int, seconds: float):
    import httpx
    lat, errors = [], 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30.0) as http:
        for p in payloads[:2]:   # warm: load the model, open connections
            await http.post(path, content=p)
        stop = time.perf_counter() + seconds

        async def client(i):
            nonlocal errors
            k = i
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await http.post(path, content=payloads[k % len(payloads)])
                lat.append(time.perf_counter() - t)
                errors += r.status_code != 200
                k += clients
        t0 = time.perf_counter()
        await asyncio.gather(*[client(i) for i in range(clients)])
        wall = time.perf_counter() - t0
    lat = np.asarray(lat)
    return {"rps": len(lat) / wall, "p50": float(np.percentile(lat, 50)) * 1e3,
            "p99": float(np.percentile(lat, 99)) * 1e3, "errors": errors, "n": len(lat)}


def goals(results: dict) -> str:
    """The issue's goal per batch size at the most clients, batching on: >= 1x the peer's req/s, p99 <= 2x."""
    most = max(c for (_, c, _) in results)
    lines = []
    for b in sorted({b for (b, c, _) in results if c == most}):
        ours, peer = results[(b, most, "mapred batching")], results[(b, most, "sklearn+FastAPI")]
        med = {k: (float(np.median([r[k] for r in ours])), float(np.median([r[k] for r in peer])))
               for k in ("rps", "p99")}
        rps, p99 = med["rps"][0] / med["rps"][1], med["p99"][0] / med["p99"][1]
        errors = sum(r["errors"] for r in ours)
        ok = rps >= 1.0 and p99 <= 2.0 and errors == 0
        lines.append(f"goal, batch {b}, {most} clients, batching on: throughput {rps:.2f}x (>= 1x), "
                     f"p99 {p99:.2f}x (<= 2x), {errors} errors: {'met' if ok else 'NOT met'}")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--clients", default="1,32")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mapred-bench-serving-") as tmp:
        _, X, registry = train(args.features, tmp)
        ours, peer, url, peer_url, token = start_servers(tmp, registry)
        try:
            results: dict = {}
            configs = [(b, c) for b in map(int, args.batches.split(",")) for c in map(int, args.clients.split(","))]
            for _ in range(args.rounds):
                for b, c in configs:
                    chunks = [X[i:i + b] for i in range(0, 64 * b, b)]
                    for label, base, kind, model in [("sklearn+FastAPI", peer_url, "peer", ""),
                                                     ("mapred", url, "oip", "lr"),
                                                     ("mapred batching", url, "oip", "lr_batched")]:
                        path = request_for(kind, chunks[0], model)[0]
                        payloads = [request_for(kind, ch, model)[1] for ch in chunks]
                        r = asyncio.run(load(base, token, path, payloads, c, args.seconds))
                        results.setdefault((b, c, label), []).append(r)
            rows = []
            for (b, c, label), rs in results.items():
                rps = float(np.median([r["rps"] for r in rs]))
                p50 = float(np.median([r["p50"] for r in rs]))
                p99 = float(np.median([r["p99"] for r in rs]))
                peer_r = results[(b, c, "sklearn+FastAPI")]
                peer_rps = float(np.median([r["rps"] for r in peer_r]))
                peer_p99 = float(np.median([r["p99"] for r in peer_r]))
                rows.append((b, c, label, f"{rps:.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{rps / peer_rps:.2f}x",
                             f"{p99 / peer_p99:.2f}x", sum(r["errors"] for r in rs)))
            print(table(rows, ("rows/req", "clients", "server", "req/s", "p50 ms", "p99 ms", "req/s vs peer",
                               "p99 vs peer", "errors")))
            print(goals(results))
        finally:
            for proc in (ours, peer):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in (ours, peer):
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
