"""The serving engine without HTTP: predictors of every model class, tensor checks, batching, swaps."""
import asyncio
import json
import os
import struct

import numpy as np
import pytest

import models
from models.registry import Registry
from models.serving import InferError, ModelServer
from models.serving.batching import Batcher
from models.serving.tensors import parse_request


def body(name, arr, datatype="FP64", **extra):
    arr = np.asarray(arr)
    data = arr.ravel().tolist()
    return json.dumps({"inputs": [{"name": name, "shape": list(arr.shape), "datatype": datatype,
                                   "data": data}], **extra}).encode()


def outputs(raw: bytes) -> dict:
    doc = json.loads(raw)
    return {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in doc["outputs"]}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, clusters):
    """One registered version of every servable class."""
    c = clusters.get(2)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    y3 = np.digitize(X[:, 0], [-0.5, 0.5])
    reg = Registry(str(tmp_path_factory.mktemp("zoo")))
    fitted = {
        "logit": models.LogisticRegression(epochs=20).fit(X, y, cluster=c),
        "softmax": models.LogisticRegression(epochs=20).fit(X, y3, cluster=c),
        "linear": models.LinearRegression().fit(X, X @ [1.0, 2.0, -1.0] + 0.5, cluster=c),
        "kmeans": models.KMeans(3, seed=0).fit(X, cluster=c),
        "gnb": models.GaussianNB().fit(X, y, cluster=c),
    }
    ratings = np.array([(u, i, float((u * i) % 5)) for u in range(20) for i in range(15) if (u + i) % 3])
    fitted["als"] = models.ALS(rank=3, iterations=3).fit(ratings, cluster=c)
    docs = ["good great fun", "bad awful boring", "great film good", "awful bad plot"] * 10
    fitted["text"] = models.Pipeline([models.TfidfVectorizer(), models.MultinomialNB()]).fit(
        docs, [1, 0, 1, 0] * 10, cluster=c)
    fitted["textlr"] = models.Pipeline([models.TfidfVectorizer(), models.LogisticRegression()]).fit(
        docs, [1, 0, 1, 0] * 10, cluster=c)
    three = ["good great fun", "bad awful boring", "plot film story"] * 10
    fitted["text3"] = models.Pipeline([models.TfidfVectorizer(), models.LogisticRegression()]).fit(
        three, [2, 0, 1] * 10, cluster=c)
    for name, m in fitted.items():
        reg.register(m, name)
        reg.set_alias(name, "champion", 1)
    return reg, fitted, X


def infer(server, name, raw, version=None, **kw):
    return asyncio.run(server.infer(name, version, raw, **kw))


def test_every_model_class_serves_what_it_predicts(zoo):
    reg, fitted, X = zoo
    server = ModelServer(reg, poll_interval=0)
    out = outputs(infer(server, "logit", body("input", X))[0])
    np.testing.assert_array_equal(out["label"], fitted["logit"].predict(X))
    np.testing.assert_allclose(out["probabilities"], fitted["logit"].predict_proba(X))
    out = outputs(infer(server, "softmax", body("input", X))[0])
    np.testing.assert_array_equal(out["label"], fitted["softmax"].predict(X))
    out = outputs(infer(server, "linear", body("input", X))[0])
    np.testing.assert_allclose(out["prediction"], fitted["linear"].predict(X))
    out = outputs(infer(server, "kmeans", body("input", X))[0])
    np.testing.assert_array_equal(out["cluster"], fitted["kmeans"].predict(X))
    np.testing.assert_allclose(out["distance"], fitted["kmeans"].transform(X).min(axis=1))
    out = outputs(infer(server, "gnb", body("input", X))[0])
    np.testing.assert_array_equal(out["label"], fitted["gnb"].predict(X))
    raw = json.dumps({"inputs": [{"name": "user_id", "shape": [2], "datatype": "INT64", "data": [3, 7]}],
                      "parameters": {"n": 4}}).encode()
    out = outputs(infer(server, "als", raw)[0])
    assert out["items"].shape == (2, 4)
    assert [i for i, _ in fitted["als"].recommend(7, 4)] == out["items"][1].tolist()
    docs = ["great fun film", "boring awful"]
    out = outputs(infer(server, "text", body("text", np.array(docs, dtype=object), "BYTES"))[0])
    np.testing.assert_array_equal(out["label"], fitted["text"].predict(docs))


def test_explain_gives_contributions_that_add_up(zoo):
    reg, fitted, X = zoo
    server = ModelServer(reg, poll_interval=0)
    out = outputs(infer(server, "logit", body("input", X[:5]), explain=True)[0])
    m = fitted["logit"]
    np.testing.assert_allclose(out["contributions"].sum(axis=1) + m.intercept_, m.decision_function(X[:5]))
    out = outputs(infer(server, "linear", body("input", X[:5], parameters={"explain": True}))[0])
    np.testing.assert_allclose(out["contributions"].sum(axis=1) + fitted["linear"].intercept_,
                               fitted["linear"].predict(X[:5]))
    with pytest.raises(InferError, match="explain is for linear models"):
        infer(server, "kmeans", body("input", X[:2]), explain=True)
    with pytest.raises(InferError, match="explain is for linear models"):
        infer(server, "text", body("text", np.array(["good"], dtype=object), "BYTES"), explain=True)


def _tfidf_by_hand(corpus, doc):
    """scikit-learn's default tf-idf of ``doc`` over ``corpus``, written out: {term: weight}."""
    import math
    import re
    tokens = [t for t in re.findall(r"(?u)\b\w\w+\b", doc.lower())]
    vocab = {t for d in corpus for t in re.findall(r"(?u)\b\w\w+\b", d.lower())}
    n = len(corpus)
    raw = {}
    for t in tokens:
        if t in vocab:
            df = sum(1 for d in corpus if t in re.findall(r"(?u)\b\w\w+\b", d.lower()))
            raw[t] = raw.get(t, 0.0) + math.log((1 + n) / (1 + df)) + 1.0   # tf counts, times idf
    norm = math.sqrt(sum(w * w for w in raw.values()))
    return {t: w / norm for t, w in raw.items()}


def test_explain_text_pipeline_gives_per_token_contributions_by_hand(zoo):
    """tf-idf + logistic: each token's part is its tf-idf weight times its coefficient, computed here by hand."""
    reg, fitted, _ = zoo
    server = ModelServer(reg, poll_interval=0)
    corpus = ["good great fun", "bad awful boring", "great film good", "awful bad plot"] * 10
    docs = ["great fun, great film!", "awful plot unknownword", "nothing known"]
    raw = body("text", np.array(docs, dtype=object), "BYTES")
    meta = asyncio.run(server.metadata("textlr"))
    assert {"name": "tokens", "datatype": "BYTES", "shape": [-1, -1]} in meta["outputs"]
    out = outputs(infer(server, "textlr", raw, explain=True)[0])
    m = fitted["textlr"]
    lr, vocab = m.final, m.steps[0].vocabulary_
    coef = np.asarray(lr.coef_).reshape(-1)
    for i, doc in enumerate(docs):
        want = {t: w * coef[vocab[t]] for t, w in _tfidf_by_hand(corpus, doc).items()}
        got = {t: c for t, c in zip(out["tokens"][i], out["contributions"][i]) if t != ""}
        assert set(got) == set(want), (doc, got, want)
        for t in want:
            assert got[t] == pytest.approx(want[t], rel=1e-9, abs=1e-12)
        parts = [abs(c) for t, c in zip(out["tokens"][i], out["contributions"][i]) if t != ""]
        assert parts == sorted(parts, reverse=True), "largest first"
    assert out["tokens"].shape == (3, 3) and list(out["tokens"][2]) == ["", "", ""]   # padded; no known term
    assert list(out["tokens"][1]).count("") == 1
    np.testing.assert_allclose(out["contributions"].sum(axis=1) + lr.intercept_,
                               m.final.decision_function(m.transform(docs)))
    np.testing.assert_array_equal(out["label"], m.predict(docs))
    top = outputs(infer(server, "textlr", body("text", np.array(docs[:1], dtype=object), "BYTES",
                                               parameters={"explain": True, "top": 1}))[0])
    assert top["tokens"].shape == (1, 1) and top["tokens"][0, 0] == out["tokens"][0, 0]
    # multinomial: the parts are toward the class each row is predicted as
    m3 = fitted["text3"]
    out = outputs(infer(server, "text3", body("text", np.array(["good fun", "awful"], dtype=object), "BYTES"),
                        explain=True)[0])
    classes = list(m3.final.classes_)
    Z = m3.final.decision_function(m3.transform(["good fun", "awful"]))
    for i, label in enumerate(out["label"]):
        k = classes.index(label)
        assert out["contributions"][i].sum() + m3.final.intercept_[k] == pytest.approx(Z[i, k])


@pytest.mark.parametrize("raw, message", [
    (body("x", np.zeros((1, 3))), "takes one input 'input' (FP64 [-1, 3]); got 'x'"),
    (body("input", np.zeros((1, 4))), "shape [1, 4]; expected [-1, 3]"),
    (body("input", np.zeros(3)), "shape [3]; expected [-1, 3]"),
    (body("input", np.zeros((1, 3), dtype=int), "INT64"), "datatype INT64; expected FP64"),
    (body("input", np.zeros((1, 3)), "FLOAT"), "datatype 'FLOAT'"),
    (json.dumps({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                             "data": [1, 2]}]}).encode(), "2 values for shape [1, 3]"),
    (json.dumps({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                             "data": [1, "a", 2]}]}).encode(), "holds str value 'a'"),
    (b'{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, NaN, 2]}]}',
     "row 0 holds NaN"),
    (b"not json", "not valid JSON"),
    (b'{"inputs": []}', "non-empty 'inputs'"),
    (body("input", np.zeros((1, 3)), outputs=[{"name": "nope"}]), "unknown output(s) ['nope']"),
])
def test_bad_tensors_are_400_naming_the_expectation(zoo, raw, message):
    reg, _, _ = zoo
    server = ModelServer(reg, poll_interval=0)
    with pytest.raises(InferError) as err:
        infer(server, "logit", raw)
    assert err.value.status == 400 and message in err.value.message, err.value.message


def test_binary_tensor_extension_roundtrip():
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    head = json.dumps({"inputs": [{"name": "input", "shape": [2, 3], "datatype": "FP32",
                                   "parameters": {"binary_data_size": X.nbytes}},
                                  {"name": "t", "shape": [1], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": 7}}]}).encode()
    req = parse_request(head + X.tobytes() + struct.pack("<I", 3) + b"abc", str(len(head)))
    np.testing.assert_array_equal(req.inputs[0].array, X)
    assert req.inputs[1].array.tolist() == ["abc"]
    with pytest.raises(InferError, match="binary_data_size 7 exceeds"):
        parse_request(head + X.tobytes()[:-4] + struct.pack("<I", 3) + b"abc", str(len(head)))


def test_unknown_models_versions_aliases_are_404(zoo):
    reg, _, X = zoo
    server = ModelServer(reg, poll_interval=0)
    for name, version, msg in [("nope", None, "no model named 'nope'"), ("logit", "7", "no version 7"),
                               ("logit", "challenger", "no alias 'challenger'")]:
        with pytest.raises(InferError) as err:
            infer(server, name, body("input", X[:1]), version)
        assert err.value.status == 404 and msg in err.value.message


def test_alias_swap_loads_beside_and_a_broken_version_keeps_the_old_serving(zoo, tmp_path):
    reg, fitted, X = zoo
    root = Registry(str(tmp_path / "r"))
    root.register(fitted["logit"], "m")
    root.register(fitted["gnb"], "m")
    broken = root.register(fitted["logit"], "m")
    os.truncate(os.path.join(broken.uri, "coef_.npy"), 10)
    root.set_alias("m", "champion", 1)
    server = ModelServer(root, poll_interval=0)

    async def run():
        _, _, lv = await server.infer("m", None, body("input", X[:2]))
        assert lv.version == 1
        root.set_alias("m", "champion", 2)
        await asyncio.to_thread(server.refresh, "m")
        _, _, lv2 = await server.infer("m", None, body("input", X[:2]))
        assert lv2.version == 2 and lv.draining
        assert ("m", 1) not in server._versions, "the old version is unloaded once drained"
        root.set_alias("m", "champion", 3)
        status = await asyncio.to_thread(server.refresh, "m")
        assert "truncated or corrupt" in status["alias_errors"]["m@champion"]
        assert "truncated or corrupt" in status["unloadable"]["m/3"]
        _, _, lv3 = await server.infer("m", None, body("input", X[:2]))
        assert lv3.version == 2, "a version that fails to load leaves the old one serving"
        with pytest.raises(InferError) as err:
            await server.infer("m", "3", body("input", X[:2]))
        assert err.value.status == 503 and "corrupt" in err.value.message
        _, _, lv1 = await server.infer("m", "1", body("input", X[:2]))   # other versions still serve
        assert lv1.version == 1
    asyncio.run(run())


def test_batcher_batches_per_key_and_bounds_its_queue():
    calls = []

    def run(X, params):
        calls.append(len(X))
        return {"y": X * 2}

    async def go():
        b = Batcher(run, max_batch_size=8, max_wait_s=0.05, max_queue=6)
        results = await asyncio.gather(*[b.submit(np.full((1, 1), i), {}, None) for i in range(6)])
        assert [int(r["y"][0, 0]) for r in results] == [2 * i for i in range(6)]
        assert calls == [6]
        futs = [asyncio.ensure_future(b.submit(np.ones((1, 1)), {}, None)) for _ in range(7)]
        done = await asyncio.gather(*futs, return_exceptions=True)
        refused = [d for d in done if isinstance(d, InferError)]
        assert len(refused) == 1 and refused[0].status == 503 and refused[0].retry_after
        calls.clear()
        mixed = await asyncio.gather(b.submit(np.ones((3, 1)), {}, "a"), b.submit(np.ones((2, 1)), {}, "b"),
                                     b.submit(np.ones((4, 1)), {}, "a"))
        assert sorted(calls) == [2, 7] and [len(m["y"]) for m in mixed] == [3, 2, 4]
        b.close()
    asyncio.run(go())


def test_micro_batching_through_the_engine(zoo, tmp_path):
    reg, fitted, X = zoo
    root = Registry(str(tmp_path / "b"))
    root.register(fitted["logit"], "m")
    root.set_alias("m", "champion", 1)
    root.set_serving_options("m", max_batch_size=64, max_batch_wait_ms=20)
    server = ModelServer(root, poll_interval=0)

    async def go():
        got = await asyncio.gather(*[server.infer("m", None, body("input", X[i:i + 1])) for i in range(40)])
        labels = np.concatenate([outputs(g[0])["label"] for g in got])
        np.testing.assert_array_equal(labels, fitted["logit"].predict(X[:40]))
        assert got[0][2].batching
    asyncio.run(go())


def test_batch_predictions_format_rule_is_the_engines():
    """Batch prediction reads a file as the engine would (models/ keeps its own copy of the rule)."""
    from mapred import formats
    from models.serving.records import INPUT_FORMATS, format_of
    assert INPUT_FORMATS == formats.INPUT_FORMATS
    for name in ["a.csv", "a.TSV", "a.jsonl", "a.ndjson", "a.jsonl.gz", "a.parquet", "a.pq", "a.avro", "a.seq",
                 "a.mpk", "a.msgpack", "a.txt", "a", "a.csv.zst"]:
        want = formats.infer(name)
        assert format_of(name) == ("text" if want == "ztext" else want), name


def test_a_new_server_loads_the_served_set_again(zoo, tmp_path):
    """What one server had loaded (aliases, versions by number) is in the registry; the next loads it at start."""
    reg, fitted, X = zoo
    root = Registry(str(tmp_path / "s"))
    for m in ("logit", "gnb", "logit"):
        root.register(fitted[m], "m")
    root.set_alias("m", "champion", 1)
    root.set_alias("m", "challenger", 2)
    first = ModelServer(root, poll_interval=0)
    infer(first, "m", body("input", X[:1]))                 # champion -> 1
    infer(first, "m", body("input", X[:1]), "challenger")   # challenger -> 2
    infer(first, "m", body("input", X[:1]), "3")            # version 3 by number
    assert root.served("m") == {"aliases": ["challenger", "champion"], "versions": [3]}
    root.set_alias("m", "champion", 2)                      # moved while no server runs
    second = ModelServer(root, poll_interval=0).start()
    assert second.restored.wait(30)
    status = second.status("m")
    assert status["aliases"] == {"m@challenger": 2, "m@champion": 2}
    assert sorted(lv["version"] for lv in status["loaded"]) == [2, 3]
    _, _, lv = infer(second, "m", body("input", X[:1]))
    assert lv.version == 2 and lv is second.lookup("m", None), "served from memory, not loaded on demand"
    os.truncate(os.path.join(root.get("m", 3).uri, "coef_.npy"), 10)   # a version that no longer loads
    third = ModelServer(root, poll_interval=0).start()
    assert third.restored.wait(30)
    assert "m/3" in third.status("m")["unloadable"]
    assert root.served("m") == {"aliases": ["challenger", "champion"], "versions": []}
    second.close()
    third.close()


def test_batch_prediction_of_records_for_text_als_and_kmeans(zoo, tmp_path, clusters):
    """Records become documents, user ids or rows as the model needs; a record that fits none names the problem."""
    from mapred.errors import ModelError
    from mapred.io.recordfile import RecordWriter
    from models.serving.batch import batch_predict, read_predictions
    reg, fitted, X = zoo
    c = clusters.get(2)
    docs = ["great fun film", "boring awful", "good plot", "bad"] * 25
    with open(tmp_path / "docs.jsonl", "w") as f:
        f.writelines(json.dumps({"id": i, "text": d}) + "\n" for i, d in enumerate(docs))
    batch_predict("models:/textlr/1", str(tmp_path / "docs.jsonl"), str(tmp_path / "o1"), registry=reg.root,
                  cluster=c, keep=["id"])
    recs = read_predictions(str(tmp_path / "o1"))
    assert [r["id"] for r in recs] == list(range(len(docs)))
    assert [r["label"] for r in recs] == fitted["textlr"].predict(docs).tolist()
    with open(tmp_path / "users.mpk", "wb") as f:
        w = RecordWriter(f, chunk_bytes=64)
        for u in range(20):
            w.write(f"u{u}", {"user_id": u})
        w.close()
    batch_predict("models:/als/1", str(tmp_path / "users.mpk"), str(tmp_path / "o2"), registry=reg.root, cluster=c)
    pairs = read_predictions(str(tmp_path / "o2"))
    assert [k for k, _ in pairs] == [f"u{u}" for u in range(20)]
    assert pairs[7][1]["items"] == [i for i, _ in fitted["als"].recommend(7, 10)]
    with open(tmp_path / "rows.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in X.tolist())     # JSON arrays: rows as they are
    batch_predict("models:/kmeans/1", str(tmp_path / "rows.jsonl"), str(tmp_path / "o3"), registry=reg.root,
                  cluster=c, output_format="parquet")
    assert [r["cluster"] for r in read_predictions(str(tmp_path / "o3"))] == fitted["kmeans"].predict(X).tolist()
    with open(tmp_path / "bad.jsonl", "w") as f:
        f.write(json.dumps([1.0, 2.0]) + "\n")
    with pytest.raises(ModelError, match="record 0 has 2 values; the model takes 3 features"):
        batch_predict("models:/kmeans/1", str(tmp_path / "bad.jsonl"), str(tmp_path / "o4"), registry=reg.root,
                      cluster=c)
    with pytest.raises(ModelError, match="no field 'body'"):
        batch_predict("models:/textlr/1", str(tmp_path / "docs.jsonl"), str(tmp_path / "o5"), registry=reg.root,
                      cluster=c, columns=["body"])
