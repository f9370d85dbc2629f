"""Splits, scaling, CSV loading, one-hot and hashing."""
import numpy as np
import pytest
from sklearn import datasets, preprocessing

import mapred
import models
from mapred.errors import ModelError


@pytest.mark.timeout(60)
def test_split_is_deterministic_disjoint_and_complete(clusters):
    X = np.arange(10_000, dtype=np.float64).reshape(-1, 1)
    y = np.arange(10_000)
    parts_a = models.split(mapred.from_numpy(X, y, splits=3), [0.8, 0.1, 0.1], seed=5,
                           cluster=clusters.get(2))
    parts_b = models.split(mapred.from_numpy(X, y, splits=7), [0.8, 0.1, 0.1], seed=5,
                           cluster=clusters.get(1))
    ids_a = [p.to_numpy()[1] for p in parts_a]
    ids_b = [p.to_numpy()[1] for p in parts_b]
    for a, b in zip(ids_a, ids_b):  # same rows whatever the splits and workers
        np.testing.assert_array_equal(a, b)
    everything = np.sort(np.concatenate(ids_a))
    np.testing.assert_array_equal(everything, y)
    sizes = [len(a) / len(y) for a in ids_a]
    assert sizes == pytest.approx([0.8, 0.1, 0.1], abs=0.02)
    other = models.split(mapred.from_numpy(X, y, splits=3), [0.8, 0.1, 0.1], seed=6,
                         cluster=clusters.get(2))
    assert not np.array_equal(other[1].to_numpy()[1], ids_a[1])
    with pytest.raises(ModelError, match="fractions"):
        models.split(mapred.from_numpy(X, y), [0.5, 0.6])


@pytest.mark.timeout(60)
def test_standard_scaler_equals_sklearn(c2):
    X, y = datasets.load_wine(return_X_y=True)
    ours = models.StandardScaler().fit(mapred.from_numpy(X, splits=4), cluster=c2)
    ref = preprocessing.StandardScaler().fit(X)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.var_, ref.var_, rtol=1e-10)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-9, atol=1e-12)
    scaled = ours.transform_dataset(mapred.from_numpy(X, y, splits=4), cluster=c2)
    Xs, ys = scaled.to_numpy()
    np.testing.assert_allclose(Xs, ref.transform(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ys, y)


@pytest.mark.timeout(60)
def test_read_csv_with_header_and_label(c2, tmp_path):
    X, y = datasets.load_iris(return_X_y=True)
    path = tmp_path / "iris.csv"
    lines = ["a,b,label,c,d"] + [f"{r[0]},{r[1]},{t},{r[2]},{r[3]}" for r, t in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    ds = models.read_csv(str(path), label="label", splits=3, cluster=c2)
    Xr, yr = ds.to_numpy()
    np.testing.assert_allclose(Xr, X)
    np.testing.assert_array_equal(yr, y)


@pytest.mark.timeout(60)
def test_read_csv_bad_row_names_the_offset(c2, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1,2\n3\n4,5\n")
    with pytest.raises(ModelError, match="byte offset 8: 1 fields, expected 2"):
        models.read_csv(str(path), label="y", cluster=c2)
    path.write_text("x,y\n1,2\n3,abc\n")
    with pytest.raises(ModelError, match="not a number"):
        models.read_csv(str(path), label="y", cluster=c2)


@pytest.mark.timeout(60)
def test_one_hot_and_feature_hashing(c2):
    X = np.array([[0, 10], [1, 10], [2, 20], [1, 30]], dtype=np.float64)
    enc = models.OneHotEncoder().fit(mapred.from_numpy(X, splits=2), cluster=c2)
    ref = preprocessing.OneHotEncoder().fit(X)
    np.testing.assert_array_equal(enc.transform(X), ref.transform(X).toarray())
    with pytest.raises(ModelError, match="row 0: column 1 value 99.0 was not seen"):
        enc.transform(np.array([[0, 99.0]]))
    H = models.hash_features([["a", "b", "a"], ["c"]], n_features=16)
    assert H.shape == (2, 16) and abs(H[0]).sum() in (1.0, 3.0) and abs(H[1]).sum() == 1.0
    np.testing.assert_array_equal(H.toarray(), models.hash_features([["a", "b", "a"], ["c"]], 16).toarray())


@pytest.mark.timeout(60)
def test_read_csv_several_files_keep_file_and_line_order(c2, tmp_path):
    X = np.arange(40, dtype=np.float64).reshape(20, 2)
    for part, rows in (("b.csv", X[10:]), ("a.csv", X[:10])):
        (tmp_path / part).write_text("u,v\n" + "".join(f"{r[0]},{r[1]}\n" for r in rows))
    ds = models.read_csv(str(tmp_path / "*.csv"), splits=2, cluster=c2)
    np.testing.assert_array_equal(ds.to_numpy()[0], X)
    with pytest.raises(ModelError, match="label column 'w' is not in the CSV header"):
        models.read_csv(str(tmp_path / "*.csv"), label="w", cluster=c2)


@pytest.mark.timeout(60)
def test_read_csv_parses_on_the_cluster_into_dataset_parts(c2, tmp_path):
    """The rows never come back to the driver: each map task writes its block as a part of the dataset."""
    X = np.arange(3000, dtype=np.float64).reshape(1000, 3)
    for name, rows in (("a.csv", X[:500]), ("b.csv", X[500:])):
        (tmp_path / name).write_text("p,q,r\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    ds = models.read_csv(str(tmp_path / "*.csv"), label="r", splits=4, cluster=c2,
                         path=str(tmp_path / "parsed"))
    assert len(ds.parts) >= 2 and ds.num_splits == 4
    Xr, yr = ds.to_numpy()
    np.testing.assert_array_equal(Xr, X[:, :2])
    np.testing.assert_array_equal(yr, X[:, 2])
    assert mapred.load_dataset(str(tmp_path / "parsed")).num_rows == 1000
