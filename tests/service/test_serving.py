"""Model serving on a real cluster and a real ``mapred serve`` process (the shared ``service`` fixture)."""
import json
import os
import threading
import time
from urllib.parse import urlparse

import numpy as np
import pytest
from click.testing import CliRunner

import mapred
import models
from mapred.cli import main
from models.registry import Registry

pytestmark = pytest.mark.timeout(300)


def oip(rows, name="input", datatype="FP64", **extra) -> dict:
    rows = np.asarray(rows)
    return {"inputs": [{"name": name, "shape": list(rows.shape), "datatype": datatype,
                        "data": rows.ravel().tolist()}], **extra}


def out(resp, name):
    doc = resp.json()
    o = next(o for o in doc["outputs"] if o["name"] == name)
    return np.array(o["data"]).reshape(o["shape"])


def wait_for(fn, timeout=120.0, what="a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def trained(service):
    """Two logistic regressions trained on the cluster, registered in the store's registry as clf/1, clf/2."""
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))
    train, test = idx[:400], idx[400:]
    with mapred.connect(service.master) as cluster:
        a = models.LogisticRegression(epochs=30, seed=0).fit(X[train], y[train], cluster=cluster)
        # strongly regularised, so its answers differ from a's (the default solver reaches the optimum
        # whatever the epochs or learning rate, so those no longer make two different models)
        b = models.LogisticRegression(C=0.01, seed=1).fit(X[train], y[train], cluster=cluster)
    reg = Registry(service.store_uri + "/models")
    v1 = reg.register(a, "clf", metrics={"test": models.evaluate(a, mapred.from_numpy(X[test], y[test], splits=2))})
    v2 = reg.register(b, "clf")
    reg.set_alias("clf", "champion", v1.version)
    return {"X": X, "y": y, "test": test, "a": a, "b": b, "reg": reg}


def test_http_predictions_equal_in_process_for_every_held_out_row(service, trained):
    X, a = trained["X"], trained["a"]
    with service.client() as http:
        assert http.get("/v2/health/live").json() == {"live": True}
        assert http.get("/v2/health/ready").status_code == 200
        meta = http.get("/v2/models/clf").json()
        assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, X.shape[1]]}]
        assert {o["name"] for o in meta["outputs"]} >= {"label", "probabilities"}
        assert http.get("/v2/models/clf/ready").json()["ready"] is True
        for i in trained["test"]:
            r = http.post("/v2/models/clf/infer", json=oip(X[i:i + 1], id=f"row-{i}"))
            assert r.status_code == 200, r.text
            doc = r.json()
            assert (doc["model_name"], doc["model_version"], doc["id"]) == ("clf", "1", f"row-{i}")
            assert out(r, "label")[0] == a.predict(X[i:i + 1])[0]
        r = http.post("/v2/models/clf/versions/1/infer", json=oip(X[trained["test"]]))
        np.testing.assert_array_equal(out(r, "label"), a.predict(X[trained["test"]]))
        np.testing.assert_allclose(out(r, "probabilities"), a.predict_proba(X[trained["test"]]))
        r = http.post("/v2/models/clf/infer?explain=true", json=oip(X[:3]))
        np.testing.assert_allclose(out(r, "contributions").sum(axis=1) + a.intercept_, a.decision_function(X[:3]))
        metrics = http.get("/metrics").text
        assert 'mapred_model_requests_total{model="clf",version="1"}' in metrics


def test_tritonclient_gets_metadata_and_infers(service, trained):
    import tritonclient.http as triton
    X, a = trained["X"], trained["a"]
    headers = {"Authorization": f"Bearer {service.admin_token}"}
    client = triton.InferenceServerClient(urlparse(service.url).netloc)
    try:
        assert client.is_server_live()
        assert client.is_model_ready("clf", headers=headers)
        meta = client.get_model_metadata("clf", headers=headers)
        assert meta["inputs"][0]["name"] == "input" and meta["versions"]
        rows = X[:10].astype(np.float32)
        for binary in (True, False):
            inp = triton.InferInput("input", list(rows.shape), "FP32")
            inp.set_data_from_numpy(rows, binary_data=binary)
            outs = [triton.InferRequestedOutput("label", binary_data=binary),
                    triton.InferRequestedOutput("probabilities", binary_data=binary)]
            res = client.infer("clf", [inp], outputs=outs, headers=dict(headers), request_id="t1")  # it adds to them
            np.testing.assert_array_equal(res.as_numpy("label"), a.predict(rows.astype(np.float64)))
            np.testing.assert_allclose(res.as_numpy("probabilities"), a.predict_proba(rows.astype(np.float64)))
            assert res.get_response()["model_version"] == "1"
    finally:
        client.close()


@pytest.mark.timeout(240)
def test_sixteen_clients_while_the_alias_moves_ten_times(service, trained):
    """Zero failures; every response names its version and equals that version's in-process answer."""
    X, reg = trained["X"], trained["reg"]
    reg.set_serving_options("clf", max_batch_size=32, max_batch_wait_ms=2)
    expected = {"1": trained["a"].predict_proba(X), "2": trained["b"].predict_proba(X)}
    assert not np.allclose(expected["1"], expected["2"])
    stop = threading.Event()
    seen, failures, counts = set(), [], [0] * 16

    def client(k):
        rng = np.random.default_rng(k)
        with service.client() as http:
            while not stop.is_set():
                rows = rng.choice(len(X), size=int(rng.integers(1, 5)), replace=False)
                try:
                    r = http.post("/v2/models/clf/infer", json=oip(X[rows]))
                except Exception as exc:  # noqa: BLE001 - any transport failure is a failed request
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                    continue
                v = r.json()["model_version"]
                seen.add(v)
                if not np.allclose(out(r, "probabilities"), expected[v][rows]):
                    failures.append(f"a response from version {v} does not equal version {v}'s predictions")
                counts[k] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    try:
        with service.client() as admin:
            started = time.monotonic()
            for i in range(10):
                time.sleep(max(0.0, started + 2.0 * (i + 1) - time.monotonic()))
                r = admin.put("/api/v1/models/clf/aliases/champion", json={"version": 2 if i % 2 == 0 else 1})
                assert r.status_code == 200, r.text
            time.sleep(max(0.0, started + 20.0 - time.monotonic()))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not failures, failures[:5]
    assert seen == {"1", "2"} and all(counts), counts
    assert reg.alias("clf", "champion").version == 1
    reg.set_serving_options("clf", max_batch_size=0)


def test_batch_prediction_over_rest_and_cli_equals_in_process(service, trained, tmp_path):
    X, a = trained["X"], trained["a"]
    base = "/user/root-admin/serving"
    mapred.from_numpy(X, splits=4, path=service.store_uri + base + "/X")
    with service.client() as http:
        r = http.post("/api/v1/models/clf/batch-predict", json={"input": base + "/X", "output": base + "/pred"})
        assert r.status_code == 202, r.text
        doc = r.json()
        assert doc["job"] == f"/api/v1/jobs/{doc['job_id']}" and doc["version"] == "1"
    with mapred.connect(service.master) as cluster:
        cluster.handle(doc["job_id"], service.store_uri + base + "/pred").wait(timeout=120)
    pred = mapred.load_dataset(service.store_uri + base + "/pred")
    labels, proba = pred.read_rows(0, pred.num_rows)
    np.testing.assert_array_equal(labels, a.predict(X))
    np.testing.assert_allclose(proba, a.predict_proba(X))
    # text input through the CLI, three files (three splits): one output line per input line, in order
    text = service.store_uri + base + "/csv"
    for k, part in enumerate(np.array_split(X, 3)):
        with mapred.open(f"{text}/{k}.csv", "wb") as f:
            f.write("".join(",".join(repr(float(v)) for v in row) + "\n" for row in part).encode())
    r = CliRunner().invoke(main, ["predict", "models:/clf@champion", text, "-o", service.store_uri + base + "/tp",
                                  "--master", service.master],
                           env={"MAPRED_REGISTRY": service.store_uri + "/models"})
    assert r.exit_code == 0, r.output
    from models.serving.batch import read_text_predictions
    lines = read_text_predictions(service.store_uri + base + "/tp")
    assert [int(line.split("\t")[0]) for line in lines] == a.predict(X).tolist()


def _put(uri, data: bytes):
    with mapred.open(uri, "wb") as f:
        f.write(data)


def test_batch_prediction_of_record_formats_over_rest_and_cli(service, trained):
    """msgpack records, CSV with a header, JSON lines and Parquet in; each output record equals predict's row."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mapred.io.recordfile import RecordWriter
    from models.serving.batch import read_predictions
    X, a = trained["X"], trained["a"]
    labels, proba = a.predict(X).tolist(), a.predict_proba(X)
    cols = [f"f{j}" for j in range(X.shape[1])]
    base, store = "/user/root-admin/serving/rec", service.store_uri
    buf = io.BytesIO()
    w = RecordWriter(buf, chunk_bytes=4096)          # many chunks, so the file splits
    for i, row in enumerate(X):
        w.write(i, row.tolist())
    w.close()
    _put(f"{store}{base}/in/rows.mpk", buf.getvalue())
    _put(f"{store}{base}/in.csv", ("id," + ",".join(cols) + "\n" + "".join(
        f"{i}," + ",".join(repr(float(v)) for v in row) + "\n" for i, row in enumerate(X))).encode())
    _put(f"{store}{base}/in.jsonl", "".join(
        json.dumps({"id": i, **{c: float(v) for c, v in zip(cols, row)}, "note": "x"}) + "\n"
        for i, row in enumerate(X)).encode())
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": np.arange(len(X)), **{c: X[:, j] for j, c in enumerate(cols)}}), buf,
                   row_group_size=100)
    _put(f"{store}{base}/in.parquet", buf.getvalue())
    jobs = {}
    with service.client() as http:
        for name, extra in [("in", {}), ("in.jsonl", {"keep": ["id"], "columns": cols}),
                            ("in.parquet", {"keep": ["id"], "columns": cols, "output_format": "jsonl"})]:
            r = http.post("/api/v1/models/clf/batch-predict",
                          json={"input": f"{base}/{name}", "output": f"{base}/out-{name}", **extra})
            assert r.status_code == 202, r.text
            jobs[name] = r.json()
        r = http.post("/api/v1/models/clf/batch-predict",
                      json={"input": f"{base}/in.jsonl", "output": f"{base}/bad", "columns": "f0"})
        assert r.status_code == 400 and "columns must be a non-empty list" in r.text
        r = http.post("/api/v1/models/clf/batch-predict",
                      json={"input": f"{base}/in.jsonl", "output": f"{base}/bad", "input_format": "xml"})
        assert r.status_code == 400 and "input_format must be one of" in r.text
    assert (jobs["in"]["format"], jobs["in"]["output_format"]) == ("records", "msgpack")
    assert jobs["in.parquet"]["output_format"] == "jsonl"
    with mapred.connect(service.master) as cluster:
        for name, doc in jobs.items():
            cluster.handle(doc["job_id"], f"{store}{base}/out-{name}").wait(timeout=120)
    pairs = read_predictions(f"{store}{base}/out-in")
    assert [k for k, _ in pairs] == list(range(len(X))), "record keys come back in input order"
    assert [v["label"] for _, v in pairs] == labels
    np.testing.assert_allclose([v["probabilities"] for _, v in pairs], proba)
    for name in ("in.jsonl", "in.parquet"):
        recs = read_predictions(f"{store}{base}/out-{name}")
        assert [r["id"] for r in recs] == list(range(len(X))) and [r["label"] for r in recs] == labels
        np.testing.assert_allclose([r["probabilities"] for r in recs], proba)
    # CSV with a header through the CLI: CSV out, the vectors flattened into columns
    env = {"MAPRED_REGISTRY": store + "/models"}
    r = CliRunner().invoke(main, ["predict", "models:/clf/1", f"{store}{base}/in.csv", "-o", f"{store}{base}/out-csv",
                                  "--master", service.master, "--keep", "id", "--columns", ",".join(cols)], env=env)
    assert r.exit_code == 0 and "(csv -> csv)" in r.output, r.output
    recs = read_predictions(f"{store}{base}/out-csv")
    assert [r["id"] for r in recs] == list(range(len(X))) and [r["label"] for r in recs] == labels
    np.testing.assert_allclose([[r["probabilities_0"], r["probabilities_1"]] for r in recs], proba)
    # Parquet through the CLI, Parquet out; and a record the model cannot take names the problem
    r = CliRunner().invoke(main, ["predict", "models:/clf/1", f"{store}{base}/in.parquet", "-o",
                                  f"{store}{base}/out-pq", "--master", service.master, "--keep", "id"], env=env)
    assert r.exit_code == 0 and "(parquet -> parquet)" in r.output, r.output
    recs = read_predictions(f"{store}{base}/out-pq")
    assert [r["label"] for r in recs] == labels and [r["id"] for r in recs] == list(range(len(X)))
    r = CliRunner().invoke(main, ["predict", "models:/clf/1", f"{store}{base}/in.jsonl", "-o",
                                  f"{store}{base}/out-bad", "--master", service.master], env=env)
    assert r.exit_code == 1 and f"{len(cols) + 1} numeric fields" in r.output and "columns=" in r.output, r.output


def test_served_evaluation_is_stored_on_the_version(service, trained):
    X, y, test, a = trained["X"], trained["y"], trained["test"], trained["a"]
    path = "/user/root-admin/serving/test"
    mapred.from_numpy(X[test], y[test], splits=2, path=service.store_uri + path)
    with service.client() as http:
        r = http.post("/api/v1/models/clf/versions/1/evaluate", json={"dataset": path})
        assert r.status_code == 202, r.text
        href = r.json()["href"]
        run = wait_for(lambda: (lambda d: d if d["state"] != "RUNNING" else None)(http.get(href).json()),
                       what="the evaluation")
        assert run["state"] == "SUCCEEDED", run
        expected = models.evaluate(a, mapred.from_numpy(X[test], y[test], splits=2))
        assert run["metrics"]["accuracy"] == pytest.approx(expected["accuracy"])
        side = http.get("/api/v1/models/clf/evaluations").json()
        v1 = next(v for v in side if v["version"] == 1)
        assert v1["evaluations"][-1]["metrics"]["accuracy"] == pytest.approx(expected["accuracy"])
        assert v1["metrics"]["test"]["accuracy"] == pytest.approx(expected["accuracy"])


def test_registry_over_rest_and_bad_input(service, trained):
    X, reg = trained["X"], trained["reg"]
    with service.client() as http, service.client(None) as anon:
        assert anon.post("/v2/models/clf/infer", json=oip(X[:1])).status_code == 401
        assert anon.get("/api/v1/models").status_code == 401
        listed = {m["name"]: m for m in http.get("/api/v1/models").json()}
        assert listed["clf"]["aliases"]["champion"] == 1 and listed["clf"]["versions"] >= 2
        shown = http.get("/api/v1/models/clf").json()
        assert [v["version"] for v in shown["model_versions"]][:2] == [1, 2]
        v1 = http.get("/api/v1/models/clf/versions/1").json()
        assert v1["model_class"] == "LogisticRegression" and v1["lineage"]["mapred_version"]
        assert http.get("/api/v1/models/clf/aliases").json()["champion"]["version"] == 1
        r = http.delete("/api/v1/models/clf/versions/1")
        assert r.status_code == 409 and "champion" in r.json()["error"]["message"]
        for path, code, msg in [("/v2/models/nope/infer", 404, "no model named 'nope'"),
                                ("/v2/models/clf/versions/99/infer", 404, "no version 99"),
                                ("/v2/models/clf/versions/nosuch/infer", 404, "no alias 'nosuch'")]:
            r = http.post(path, json=oip(X[:1]))
            assert r.status_code == code and msg in r.json()["error"], r.text
        bad = [(oip(X[:1], name="x"), "takes one input 'input'"),
               (oip(X[:1, :5]), f"expected [-1, {X.shape[1]}]"),
               (oip(X[:1], datatype="BYTES"), "BYTES takes strings"),
               (oip(X[:1].astype(int), datatype="INT64"), "expected FP64")]
        for body, msg in bad:
            r = http.post("/v2/models/clf/infer", json=body)
            assert r.status_code == 400 and msg in r.json()["error"], r.text
        nan = json.dumps(oip(X[:1])).replace(str(X[0, 3]), "NaN", 1)
        r = http.post("/v2/models/clf/infer", content=nan, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "NaN" in r.json()["error"], r.text
        r = http.post("/v2/models/clf/infer", content=b"{" * 10, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "JSON" in r.json()["error"]
        big = b'{"inputs": [' + b" " * (80 << 20) + b"]}"
        r = http.post("/v2/models/clf/infer", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        # a corrupt version: unloadable with the reason; the others keep serving
        broken = reg.register(trained["a"], "clf")
        coef = broken.uri + "/coef_.npy"
        with mapred.open(coef, "rb") as f:
            data = f.read()
        with mapred.open(coef, "wb") as f:
            f.write(data[:20])
        r = http.post(f"/v2/models/clf/versions/{broken.version}/infer", json=oip(X[:1]))
        assert r.status_code == 503 and "corrupt" in r.json()["error"]
        r = http.put("/api/v1/models/clf/aliases/champion", json={"version": broken.version})
        assert "corrupt" in r.json()["serving"]["alias_errors"]["clf@champion"]
        r = http.post("/v2/models/clf/infer", json=oip(X[:1]))
        assert r.status_code == 200 and r.json()["model_version"] == "1", "the old version keeps serving"
        assert http.post("/api/v1/models/clf/aliases/champion/rollback").json()["version"] == 1
        reg.remove("clf", broken.version)
        user = service.token("alice", "user")
        with service.client(user) as alice:
            assert alice.post("/v2/models/clf/infer", json=oip(X[:1])).status_code == 200
            r = alice.delete("/api/v1/models/clf/versions/2")
            assert r.status_code == 403
            r = alice.post("/api/v1/models/clf/batch-predict",
                           json={"input": "/user/root-admin/serving/X", "output": "/user/bob/out"})
            assert r.status_code == 403


def test_status_page_shows_models_side_by_side(service, trained):
    """/models in headless Chromium: every model, what each alias serves, each version's metrics."""
    sync_api = pytest.importorskip("playwright.sync_api")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{service.url}/models#token={service.admin_token}")
            page.wait_for_selector('#model-list tr[data-model="clf"]', timeout=30000)
            row = page.inner_text('#model-list tr[data-model="clf"]')
            assert "champion → 1" in row
            page.wait_for_selector('#version-list tr[data-model="clf"][data-version="1"]', timeout=30000)
            v1 = page.inner_text('#version-list tr[data-model="clf"][data-version="1"]')
            assert "accuracy" in v1 and "champion" in v1
            os.makedirs(os.path.join(root, "docs", "img"), exist_ok=True)
            page.screenshot(path=os.path.join(root, "docs", "img", "models.png"), full_page=True)
            assert not problems, problems
        finally:
            browser.close()


def test_model_routes_are_in_the_openapi_schema(service):
    doc = service.client().get("/openapi.json").json()
    ops = {(m, p) for p, item in doc["paths"].items() for m in item}
    expected = {("get", "/v2/health/live"), ("get", "/v2/health/ready"), ("get", "/v2"),
                ("get", "/v2/models/{name}"), ("get", "/v2/models/{name}/versions/{version}"),
                ("get", "/v2/models/{name}/ready"), ("get", "/v2/models/{name}/versions/{version}/ready"),
                ("post", "/v2/models/{name}/infer"), ("post", "/v2/models/{name}/versions/{version}/infer"),
                ("get", "/api/v1/models"), ("get", "/api/v1/models/{name}"), ("get", "/api/v1/models/{name}/versions"),
                ("get", "/api/v1/models/{name}/versions/{version}"),
                ("delete", "/api/v1/models/{name}/versions/{version}"), ("get", "/api/v1/models/{name}/aliases"),
                ("put", "/api/v1/models/{name}/aliases/{alias}"),
                ("post", "/api/v1/models/{name}/aliases/{alias}/rollback"),
                ("get", "/api/v1/models/{name}/evaluations"), ("post", "/api/v1/models/{name}/batch-predict"),
                ("post", "/api/v1/models/{name}/versions/{version}/evaluate"), ("get", "/models"),
                ("get", "/api/v1/models/{name}/evaluations/runs"),
                ("get", "/api/v1/models/{name}/evaluations/runs/{run_id}")}
    assert expected <= ops, expected - ops
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]
    assert "inputs" in infer["requestBody"]["content"]["application/json"]["schema"]["properties"]


def test_metrics_per_model_and_version(service, trained):
    """/metrics: requests, errors, latency, batch sizes, queue wait, loaded versions and swaps, per model/version."""
    X, reg = trained["X"], trained["reg"]
    v = reg.register(trained["a"], "clfm")
    reg.set_serving_options("clfm", max_batch_size=16, max_batch_wait_ms=5)
    reg.set_alias("clfm", "champion", v.version)
    with service.client() as http:
        def one(i):
            return http.post("/v2/models/clfm/infer", json=oip(X[i:i + 1])).status_code
        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert http.post("/v2/models/clfm/infer", json=oip(X[:1, :3])).status_code == 400
        assert http.put("/api/v1/models/clfm/aliases/champion", json={"version": v.version}).status_code == 200
        text = http.get("/metrics").text
    labels = f'model="clfm",version="{v.version}"'
    for line in (f"mapred_model_requests_total{{{labels}}} 8.0",
                 f'mapred_model_errors_total{{code="400",{labels}}} 1.0',
                 f"mapred_model_request_duration_seconds_count{{{labels}}} 8.0",
                 f"mapred_model_batch_rows_sum{{{labels}}} 8.0",
                 f"mapred_model_queue_wait_seconds_count{{{labels}}} 8.0",
                 'mapred_model_loaded_versions{model="clfm"} 1.0'):
        assert line in text, (line, [t for t in text.splitlines() if "clfm" in t])


# The Open Inference Protocol's REST objects (kserve/open-inference-protocol,
# specification/protocol/open_inference_rest.yaml), as JSON Schemas: what a conforming server answers.
_OIP_TENSOR_DATA = {"type": "array", "items": {"anyOf": [{"type": "array"}, {"type": "number"}, {"type": "string"},
                                                         {"type": "boolean"}]}}
_OIP_METADATA_TENSOR = {"type": "object", "required": ["name", "datatype", "shape"],
                        "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                                       "shape": {"type": "array", "items": {"type": "integer"}}}}
OIP = {
    "server_metadata": {"type": "object", "required": ["name", "version", "extensions"],
                        "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                       "extensions": {"type": "array", "items": {"type": "string"}}}},
    "model_metadata": {"type": "object", "required": ["name", "platform"],
                       "properties": {"name": {"type": "string"}, "platform": {"type": "string"},
                                      "versions": {"type": "array", "items": {"type": "string"}},
                                      "inputs": {"type": "array", "items": _OIP_METADATA_TENSOR},
                                      "outputs": {"type": "array", "items": _OIP_METADATA_TENSOR}}},
    "inference_response": {"type": "object", "required": ["model_name", "outputs"],
                           "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"},
                                          "id": {"type": "string"}, "parameters": {"type": "object"},
                                          "outputs": {"type": "array", "items": {
                                              "type": "object", "required": ["name", "shape", "datatype", "data"],
                                              "properties": {"name": {"type": "string"},
                                                             "shape": {"type": "array", "items": {"type": "integer"}},
                                                             "datatype": {"enum": [
                                                                 "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8",
                                                                 "INT16", "INT32", "INT64", "FP16", "FP32", "FP64",
                                                                 "BYTES"]},
                                                             "data": _OIP_TENSOR_DATA,
                                                             "parameters": {"type": "object"}}}}}},
    "error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
}


def test_open_inference_protocol_conformance(service, trained):
    """Every OIP REST endpoint answers the protocol's objects; data as the spec allows it (nested or flat)."""
    import jsonschema
    X, a = trained["X"], trained["a"]

    def conforms(resp, kind, status=200):
        assert resp.status_code == status, (resp.status_code, resp.text)
        jsonschema.validate(resp.json(), OIP[kind])
        return resp.json()

    with service.client() as http:
        assert http.get("/v2/health/live").status_code == 200
        assert http.get("/v2/health/ready").status_code == 200
        meta = conforms(http.get("/v2"), "server_metadata")
        assert "binary_tensor_data" in meta["extensions"]
        for path in ("/v2/models/clf", "/v2/models/clf/versions/1"):
            meta = conforms(http.get(path), "model_metadata")
            assert meta["name"] == "clf" and "1" in meta["versions"]
        assert http.get("/v2/models/clf/ready").status_code == 200
        assert http.get("/v2/models/clf/versions/1/ready").status_code == 200
        # the spec's request: an id, parameters, nested data, a chosen output
        rows = X[:3]
        body = {"id": "42", "parameters": {"note": "any"},
                "inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP64",
                            "data": rows.tolist()}], "outputs": [{"name": "label"}]}
        doc = conforms(http.post("/v2/models/clf/versions/1/infer", json=body), "inference_response")
        assert (doc["model_name"], doc["model_version"], doc["id"]) == ("clf", "1", "42")
        assert [o["name"] for o in doc["outputs"]] == ["label"]
        np.testing.assert_array_equal(np.array(doc["outputs"][0]["data"]), a.predict(rows))
        doc = conforms(http.post("/v2/models/clf/infer", json=oip(rows)), "inference_response")
        assert "id" not in doc, "no id asked, none answered"
        # errors are the protocol's error object, with the status that says why
        conforms(http.get("/v2/models/nope"), "error", 404)
        conforms(http.get("/v2/models/nope/ready"), "error", 404)
        conforms(http.post("/v2/models/nope/infer", json=oip(rows)), "error", 404)
        two = {"inputs": [{"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
                          {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True, False, True]}]}
        err = conforms(http.post("/v2/models/clf/infer", json=two), "error", 400)
        assert "takes one input 'input'" in err["error"]
        err = conforms(http.post("/v2/models/clf/infer", json=oip(X[:2, :4].reshape(2, 2, 2))), "error", 400)
        assert f"shape [2, 2, 2]; expected [-1, {X.shape[1]}]" in err["error"]
        err = conforms(http.post("/v2/models/clf/infer", json={"inputs": [{"name": "input", "shape": [1, 2],
                                                                           "datatype": "FP64", "data": [1.0]}]}),
                       "error", 400)
        assert "1 values for shape [1, 2]" in err["error"]


def _restart_service(service) -> None:
    """kill -9 the real ``mapred serve`` process and start it again on the same port, before the same cluster."""
    import signal
    cluster = service.cluster
    old = cluster.service_proc
    os.kill(old.pid, signal.SIGKILL)
    old.wait(30)
    cluster.service_port = urlparse(service.url).port     # the same address, so every later test finds it
    assert cluster.start_service() == service.url


@pytest.mark.timeout(300)
def test_a_killed_service_restarts_with_its_models_serving_set_evaluations_and_jobs(service, trained, tmp_path):
    """kill -9 `mapred serve` mid-work: registry, aliases, what was loaded, evaluations (done and running)
    and batch predictions in flight (jobs on the master) are all there after it starts again."""
    from jobkit import gated
    X, y, test, a, reg = trained["X"], trained["y"], trained["test"], trained["a"], trained["reg"]
    store, base = service.store_uri, "/user/root-admin/serving/restart"
    mapred.from_numpy(X[test], y[test], splits=2, path=f"{store}{base}/test")
    mapred.from_numpy(X, splits=2, path=f"{store}{base}/X")
    docs = ["good great fun", "bad awful boring", "great film good", "awful bad plot"] * 10
    with mapred.connect(service.master) as cluster:
        text = models.Pipeline([models.TfidfVectorizer(), models.LogisticRegression()]).fit(
            docs, [1, 0, 1, 0] * 10, cluster=cluster)
    tv = reg.register(text, "txt")
    reg.set_alias("txt", "champion", tv.version)
    for k in range(2):                                    # one input file per slot of the cluster's worker
        _put(f"{store}{base}/gate-in/{k}.txt", b"hold\n")
    gate = str(tmp_path / "gate")
    with service.client() as http:
        assert http.post("/v2/models/clf/infer", json=oip(X[:1])).status_code == 200            # champion -> 1
        assert http.post("/v2/models/clf/versions/2/infer", json=oip(X[:1])).status_code == 200  # 2 by number
        assert http.post("/v2/models/txt/infer", json=oip(np.array(["fun"], dtype=object), "text",
                                                          "BYTES")).status_code == 200
        r = http.post("/api/v1/models/clf/versions/1/evaluate", json={"dataset": f"{base}/test"})
        done_href = r.json()["href"]
        done = wait_for(lambda: (lambda d: d if d["state"] != "RUNNING" else None)(http.get(done_href).json()),
                        what="the first evaluation")
        assert done["state"] == "SUCCEEDED", done
        before = {"models": http.get("/api/v1/models").json(), "aliases": http.get("/api/v1/models/clf/aliases").json(),
                  "serving": http.get("/api/v1/models/clf").json()["serving"]}
        assert before["serving"]["aliases"]["clf@champion"] == 1
        assert sorted(v["version"] for v in before["serving"]["loaded"]) == [1, 2]
        # the cluster's two slots held by a job that waits for the gate: what comes next stays in flight
        holder = mapred.connect(service.master)
        blocker = holder.submit(gated(gate), f"{store}{base}/gate-in", f"{store}{base}/gate-out")
        try:
            r = http.post("/api/v1/models/clf/batch-predict", json={"input": f"{base}/X", "output": f"{base}/pred"})
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            r = http.post("/api/v1/models/clf/versions/1/evaluate", json={"dataset": f"{base}/test"})
            assert r.status_code == 202, r.text
            running_href = r.json()["href"]
            assert http.get(running_href).json()["state"] == "RUNNING"
            assert http.get(f"/api/v1/jobs/{job_id}").json()["state"] not in ("SUCCEEDED", "FAILED")

            _restart_service(service)

            wait_for(lambda: http.get("/v2/health/ready").status_code == 200, what="the restarted service")
            assert http.get("/api/v1/models").json() == before["models"]
            assert http.get("/api/v1/models/clf/aliases").json() == before["aliases"]
            serving = http.get("/api/v1/models/clf").json()["serving"]   # loaded again before any request
            assert serving["aliases"] == before["serving"]["aliases"]
            assert sorted(v["version"] for v in serving["loaded"]) == [1, 2]
            assert http.get("/api/v1/models/txt").json()["serving"]["aliases"] == {"txt@champion": tv.version}
            assert http.get(done_href).json() == done, "a finished evaluation and its metrics are kept"
            resumed = http.get(running_href).json()
            assert resumed["state"] in ("RUNNING", "SUCCEEDED") and resumed["attempts"] == 2, resumed
            job = http.get(f"/api/v1/jobs/{job_id}").json()
            assert job["state"] not in ("SUCCEEDED", "FAILED"), "the batch prediction is still a job on the master"
        finally:
            open(gate, "w").close()
            try:
                blocker.wait(timeout=120)
            finally:
                holder.close()
        wait_for(lambda: http.get(f"/api/v1/jobs/{job_id}").json()["state"] == "SUCCEEDED",
                 what="the batch prediction after the restart")
        pred = mapred.load_dataset(f"{store}{base}/pred")
        labels, proba = pred.read_rows(0, pred.num_rows)
        np.testing.assert_array_equal(labels, a.predict(X))
        np.testing.assert_allclose(proba, a.predict_proba(X))
        run = wait_for(lambda: (lambda d: d if d["state"] != "RUNNING" else None)(http.get(running_href).json()),
                       what="the resumed evaluation")
        assert run["state"] == "SUCCEEDED", run
        assert run["metrics"]["accuracy"] == pytest.approx(done["metrics"]["accuracy"])
        stored = [e for e in reg.evaluations("clf", 1) if e.get("run") == run["id"]]
        assert len(stored) == 1, "a resumed run stores its evaluation once"
        runs = http.get("/api/v1/models/clf/evaluations/runs").json()
        assert {done["id"], run["id"]} <= {r["id"] for r in runs}
        # and prediction works: the same answers, and a text model explains per token
        r = http.post("/v2/models/clf/infer", json=oip(X[test]))
        assert r.json()["model_version"] == "1"
        np.testing.assert_array_equal(out(r, "label"), a.predict(X[test]))
        r = http.post("/v2/models/txt/infer?explain=true", json=oip(np.array(["great fun film"], dtype=object),
                                                                    "text", "BYTES"))
        assert r.status_code == 200, r.text
        tokens, parts = out(r, "tokens")[0].tolist(), out(r, "contributions")[0]
        assert sorted(tokens) == ["film", "fun", "great"]
        assert parts.sum() + text.final.intercept_ == pytest.approx(
            float(text.final.decision_function(text.transform(["great fun film"]))[0]))
