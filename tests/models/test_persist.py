"""save → load → predict, and model files that are missing, truncated or of another version."""
import os

import msgpack
import numpy as np
import pytest
from sklearn import datasets

import mapred
import models
from mapred.errors import ModelError
from models.synthetic import make_corpus, make_ratings


def fitted_models(c2):
    X, y = datasets.load_iris(return_X_y=True)
    ds = mapred.from_numpy(X, y, splits=2)
    yield models.LogisticRegression(solver="gd", epochs=20).fit(ds, cluster=c2), X
    yield models.LinearRegression().fit(mapred.from_numpy(X[:, :3], X[:, 3], splits=2), cluster=c2), X[:, :3]
    yield models.KMeans(3, seed=0).fit(mapred.from_numpy(X, splits=2), cluster=c2), X
    yield models.GaussianNB().fit(ds, cluster=c2), X
    yield models.MultinomialNB().fit(ds, cluster=c2), X
    yield models.StandardScaler().fit(mapred.from_numpy(X, splits=2), cluster=c2), X


@pytest.mark.timeout(90)
def test_save_load_predict_identical(c2, tmp_path):
    for i, (model, X) in enumerate(fitted_models(c2)):
        path = str(tmp_path / f"m{i}")
        model.save(path)
        back = models.load(path)
        assert type(back) is type(model)
        out = back.transform(X) if isinstance(model, models.StandardScaler) else back.predict(X)
        ref = model.transform(X) if isinstance(model, models.StandardScaler) else model.predict(X)
        np.testing.assert_array_equal(out, ref)
        assert back.history_ == model.history_
        assert not any(f.endswith((".pkl", ".pickle")) for f in os.listdir(path))


@pytest.mark.timeout(60)
def test_save_load_text_and_als(c2, tmp_path):
    docs, labels = make_corpus(200, seed=1)
    vec = models.TfidfVectorizer(min_df=2).fit(docs, cluster=c2)
    vec.save(str(tmp_path / "vec"))
    back = models.TfidfVectorizer.load(str(tmp_path / "vec"))
    assert abs(back.transform(docs) - vec.transform(docs)).max() == 0
    u, i, r, _, _ = make_ratings(30, 20, 2, density=0.5)
    als = models.ALS(rank=2, iterations=2).fit(mapred.from_numpy(u, i, r, splits=2), cluster=c2)
    als.save(str(tmp_path / "als"))
    np.testing.assert_array_equal(models.load(str(tmp_path / "als")).predict(u, i), als.predict(u, i))
    with pytest.raises(ModelError, match="holds a ALS, not a KMeans"):
        models.KMeans.load(str(tmp_path / "als"))


@pytest.fixture
def saved(c2, tmp_path):
    X, y = datasets.load_iris(return_X_y=True)
    clf = models.LogisticRegression(solver="gd", epochs=5).fit(mapred.from_numpy(X, y, splits=2), cluster=c2)
    path = str(tmp_path / "clf")
    clf.save(path)
    return path


@pytest.mark.timeout(30)
def test_missing_model_file(saved, tmp_path):
    with pytest.raises(ModelError, match="model.msgpack is missing"):
        models.load(str(tmp_path / "nowhere"))
    os.remove(os.path.join(saved, "coef_.npy"))
    with pytest.raises(ModelError, match="coef_.npy is missing"):
        models.load(saved)


@pytest.mark.timeout(30)
def test_truncated_model_files(saved):
    arr = os.path.join(saved, "coef_.npy")
    data = open(arr, "rb").read()
    open(arr, "wb").write(data[:-7])
    with pytest.raises(ModelError, match="coef_.npy is truncated or corrupt"):
        models.load(saved)
    meta = os.path.join(saved, "model.msgpack")
    open(meta, "wb").write(open(meta, "rb").read()[:20])
    with pytest.raises(ModelError, match="model.msgpack is truncated or corrupt"):
        models.load(saved)


@pytest.mark.timeout(30)
def test_other_format_version_and_foreign_files(saved, tmp_path):
    meta_path = os.path.join(saved, "model.msgpack")
    meta = msgpack.unpackb(open(meta_path, "rb").read())
    meta["version"] = 99
    open(meta_path, "wb").write(msgpack.packb(meta))
    with pytest.raises(ModelError, match="format version 99; this mapred reads version 1"):
        models.load(saved)
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.msgpack").write_bytes(msgpack.packb({"hello": 1}))
    with pytest.raises(ModelError, match="is not a mapred model file"):
        models.load(str(other))


@pytest.mark.timeout(30)
def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(ModelError, match="not fitted"):
        models.KMeans(3).save(str(tmp_path / "x"))


@pytest.mark.timeout(120)
def test_save_and_load_on_the_block_store(c2, tmp_path):
    from mapred.storage.minicluster import StorageCluster
    X, y = datasets.load_breast_cancer(return_X_y=True)
    clf = models.GaussianNB().fit(mapred.from_numpy(X, y, splits=2), cluster=c2)
    with StorageCluster(tmp_path / "store", datanodes=1, replication=1) as store:
        uri = store.namenode_uri + "/models/nb"
        clf.save(uri)
        np.testing.assert_array_equal(models.load(uri).predict(X), clf.predict(X))
        with pytest.raises(ModelError, match="missing"):
            models.load(store.namenode_uri + "/models/none")
        # training data on the store too: a dataset and a CSV file under mrfs://
        stored = mapred.from_numpy(X, y, splits=3, path=store.namenode_uri + "/data/bc")
        remote = models.GaussianNB().fit(stored, cluster=c2)
        np.testing.assert_array_equal(remote.predict(X), clf.predict(X))
        Xs = (X - X.mean(axis=0)) / X.std(axis=0)
        scaled = mapred.from_numpy(Xs, y, splits=3, path=store.namenode_uri + "/data/bcs")
        local = models.LogisticRegression(epochs=10).fit(mapred.from_numpy(Xs, y, splits=3), cluster=c2)
        cached = models.LogisticRegression(epochs=10).fit(scaled, cluster=c2)  # cached from the store
        np.testing.assert_allclose(cached.coef_, local.coef_, rtol=1e-9)
        csv = "\n".join(["a,b,y"] + [f"{r[0]},{r[1]},{t}" for r, t in zip(X[:50], y[:50])]) + "\n"
        with mapred.io.fs.get_fs(store.namenode_uri).open_write(store.namenode_uri + "/data/x.csv") as f:
            f.write(csv.encode())
        Xc, yc = models.read_csv(store.namenode_uri + "/data/x.csv", label="y", cluster=c2).to_numpy()
        np.testing.assert_allclose(Xc, X[:50, :2])
        np.testing.assert_array_equal(yc, y[:50])
