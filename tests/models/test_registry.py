"""The model registry's rules, on a local directory and in a real block store (restarted)."""
import os
import threading

import numpy as np
import pytest
from click.testing import CliRunner

import mapred
import models
from mapred.cli import main
from mapred.errors import ModelError
from mapred.storage.minicluster import StorageCluster
from models.registry import Conflict, NotFound, Registry


@pytest.fixture(scope="module")
def fitted(clusters):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = (X @ [1.0, -1.0, 0.5, 2.0] > 0).astype(int)
    a = models.LogisticRegression(epochs=15, seed=0).fit(X, y, cluster=clusters.get(2))
    b = models.LogisticRegression(epochs=3, lr=0.01, seed=1).fit(X, y, cluster=clusters.get(2))
    return X, y, a, b


def check_rules(reg: Registry, fitted, tmp_path) -> None:
    X, y, a, b = fitted
    data = tmp_path / "train.csv"
    data.write_text("\n".join(",".join(map(str, r)) for r in X))
    v1 = reg.register(a, "clf", metrics={"test": {"accuracy": 0.9}}, inputs=[str(data)], seed=7)
    assert (v1.version, v1.model_class, v1.lineage["seed"]) == (1, "LogisticRegression", 7)
    assert v1.lineage["inputs"][0]["bytes"] == data.stat().st_size
    assert len(v1.lineage["inputs"][0]["sha256"]) == 64 and v1.lineage["code_sha256"]
    assert v1.metrics["test"] == {"accuracy": 0.9} and v1.metrics["history"]
    assert v1.params["epochs"] == 15 and v1.registered_by and v1.registered_at > 0
    reg.set_alias("clf", "champion", 1)
    v2 = reg.register(b, "clf")
    assert v2.version == 2
    assert reg.alias("clf", "champion").version == 1, "registering must not move an alias"
    moved = reg.set_alias("clf", "champion", 2)
    assert (moved.version, moved.previous) == (2, 1)
    back = reg.rollback("clf", "champion")
    assert (back.version, back.previous) == (1, 2)
    with pytest.raises(Conflict, match="alias"):
        reg.remove("clf", 1)
    reg.set_alias("clf", "challenger", 2)
    with pytest.raises(Conflict, match="challenger"):
        reg.remove("clf", 2)
    reg.set_alias("clf", "challenger", None)
    reg.remove("clf", 2)
    assert reg.version_numbers("clf") == [1]
    assert reg.register(b, "clf").version == 3, "a removed version's number is never reused"
    loaded = reg.load("models:/clf@champion")
    np.testing.assert_array_equal(loaded.predict(X), a.predict(X))
    np.testing.assert_array_equal(reg.load("models:/clf/3").predict(X), b.predict(X))
    assert reg.resolve("models:/clf/latest").version == 3
    assert reg.resolve("clf").version == 1          # no alias named: the champion
    for bad, err in [("models:/nope@champion", NotFound), ("models:/clf/9", NotFound),
                     ("models:/clf@gone", NotFound), ("models:/clf/x", ModelError),
                     ("models:/../etc", ModelError)]:
        with pytest.raises(err):
            reg.resolve(bad)
    with pytest.raises(NotFound):
        reg.set_alias("clf", "champion", 42)
    with pytest.raises(ModelError, match="alias"):
        reg.set_alias("clf", "9lives", 1)
    # served evaluation runs and the served set: the state a service keeps here to survive restarts
    run = reg.save_run("clf", {"id": "abc123def456", "model": "clf", "version": 1, "state": "RUNNING",
                               "started_at": 1.0})
    assert reg.read_run("clf", "abc123def456") == run and reg.runs("clf") == [run]
    with pytest.raises(NotFound):
        reg.read_run("clf", "0000000000aa")
    with pytest.raises(NotFound, match="not an evaluation run id"):
        reg.read_run("clf", "../x")
    first = reg.add_evaluation("clf", 3, {"accuracy": 0.7}, run="abc123def456")
    again = reg.add_evaluation("clf", 3, {"accuracy": 0.1}, run="abc123def456")
    assert again == first and [e.get("run") for e in reg.evaluations("clf", 3)].count("abc123def456") == 1
    assert reg.served("clf") == {"aliases": [], "versions": []}
    reg.set_served("clf", ["champion"], [3])
    assert reg.served("clf") == {"aliases": ["champion"], "versions": [3]}


def test_registry_rules_local(tmp_path, fitted):
    check_rules(Registry(str(tmp_path / "reg")), fitted, tmp_path)


def test_models_load_takes_references(tmp_path, fitted):
    X, _, a, _ = fitted
    models.set_registry(str(tmp_path / "reg"))
    try:
        v = models.register(a, "m")
        models.Registry().set_alias("m", "champion", v.version)
        np.testing.assert_array_equal(models.load("models:/m@champion").predict(X), a.predict(X))
        np.testing.assert_array_equal(models.LogisticRegression.load("models:/m/1").predict(X), a.predict(X))
    finally:
        models.set_registry(None)


def test_concurrent_registrations_and_moves_lose_nothing(tmp_path, fitted):
    _, _, a, _ = fitted
    reg = Registry(str(tmp_path / "reg"))
    reg.register(a, "c")
    got, errors = [], []

    def work():
        try:
            got.append(reg.register(a, "c").version)
            for _ in range(5):
                reg.set_alias("c", "champion", got[-1])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(got) == [2, 3, 4, 5]
    log = reg._log("c", "champion")
    assert log == list(range(1, 21)), "every move is one entry of the alias log"
    entries = [reg._read_alias("c", "champion", s) for s in log]
    for before, after in zip(entries, entries[1:]):
        assert after.previous == before.version


@pytest.mark.timeout(180)
def test_registry_in_the_store_survives_restarting_every_process(tmp_path, fitted):
    X, _, a, b = fitted
    with StorageCluster(tmp_path / "store", datanodes=2, replication=2, dead_timeout=2.0) as sc:
        reg = Registry(sc.namenode_uri + "/models")
        check_rules(reg, fitted, tmp_path)
        reg.add_evaluation("clf", 1, {"accuracy": 0.5}, dataset="held-out")
        before = {v.version: v.to_dict() for v in reg.versions("clf")}
        sc.restart_namenode()
        for i in range(2):
            sc.kill_datanode(i)
            sc.restart_datanode(i)
        reg = Registry(sc.namenode_uri + "/models")
        after = {v.version: v.to_dict() for v in reg.versions("clf")}
        assert after == before
        assert reg.alias("clf", "champion").version == 1
        np.testing.assert_array_equal(reg.load("models:/clf@champion").predict(X), a.predict(X))
        np.testing.assert_array_equal(reg.load("models:/clf/3").predict(X), b.predict(X))
        assert reg.get("clf", 1).evaluations[0]["metrics"] == {"accuracy": 0.5}
        assert reg.read_run("clf", "abc123def456")["state"] == "RUNNING"
        assert reg.served("clf") == {"aliases": ["champion"], "versions": [3]}


def test_cli(tmp_path, fitted):
    X, _, a, b = fitted
    root = str(tmp_path / "reg")
    saved = a.save(str(tmp_path / "saved"))
    run = CliRunner().invoke
    env = {"MAPRED_REGISTRY": root}
    r = run(main, ["models", "register", "clf", saved, "--seed", "3", "--metrics", '{"test": {"accuracy": 0.91}}'],
            env=env)
    assert r.exit_code == 0, r.output
    assert "registered clf/1" in r.output
    assert run(main, ["models", "register", "clf", saved], env=env).exit_code == 0
    r = run(main, ["models", "alias", "clf", "champion", "2"], env=env)
    assert r.exit_code == 0 and "clf@champion -> 2 (previous None)" in r.output
    r = run(main, ["models", "list"], env=env)
    assert "clf" in r.output and "champion->2" in r.output
    r = run(main, ["models", "show", "clf"], env=env)
    assert "clf/1" in r.output and "clf/2" in r.output and "accuracy 0.91" in r.output
    r = run(main, ["models", "show", "clf/1"], env=env)
    assert r.exit_code == 0 and "seed 3" in r.output and "LogisticRegression" in r.output
    r = run(main, ["models", "rm", "clf/2"], env=env)
    assert r.exit_code == 1 and "champion" in r.output and "Traceback" not in r.output
    assert run(main, ["models", "alias", "clf", "champion", "1"], env=env).exit_code == 0
    r = run(main, ["models", "alias", "clf", "champion", "--rollback"], env=env)
    assert "clf@champion -> 2 (previous 1)" in r.output
    r = run(main, ["models", "rm", "clf/1"], env=env)
    assert r.exit_code == 0 and "removed clf/1" in r.output
    for args, msg in [(["models", "show", "nope"], "no model named 'nope'"),
                      (["models", "show", "clf/9"], "no version 9"),
                      (["models", "register", "clf", str(tmp_path / "missing")], "missing"),
                      (["models", "alias", "clf", "champion", "7"], "no version 7"),
                      (["models", "rm", "clf"], "NAME/V")]:
        r = run(main, args, env=env)
        assert r.exit_code != 0 and msg in r.output, (args, r.output)
    r = run(main, ["models", "serving", "clf", "--max-batch-size", "32", "--max-batch-wait-ms", "2"], env=env)
    assert r.exit_code == 0 and '"max_batch_size": 32' in r.output


def test_cli_predict_matches_in_process(tmp_path, fitted):
    X, _, a, _ = fitted
    root = str(tmp_path / "reg")
    reg = Registry(root)
    reg.register(a, "clf")
    reg.set_alias("clf", "champion", 1)
    mapred.from_numpy(X, splits=3, path=str(tmp_path / "in"))
    r = CliRunner().invoke(main, ["predict", "models:/clf@champion", str(tmp_path / "in"), "-o",
                                  str(tmp_path / "out"), "--workers", "2"], env={"MAPRED_REGISTRY": root})
    assert r.exit_code == 0, r.output
    out = mapred.load_dataset(str(tmp_path / "out"))
    labels, proba = out.read_rows(0, out.num_rows)
    np.testing.assert_array_equal(labels, a.predict(X))
    np.testing.assert_allclose(proba, a.predict_proba(X))
    assert os.path.exists(os.path.join(root, "clf", "versions", "1", "model", "model.msgpack"))
