"""k-means against scikit-learn from the same centroids, initialisations, empty clusters."""
import numpy as np
import pytest
from sklearn import cluster, datasets

import mapred
import models
from mapred.errors import ModelError
from models.synthetic import make_blobs


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name,k", [("iris", 3), ("digits", 10)])
def test_inertia_within_one_percent_of_sklearn_from_same_centroids(c2, name, k):
    X, _ = getattr(datasets, f"load_{name}")(return_X_y=True)
    init = X[np.random.default_rng(0).choice(len(X), k, replace=False)]
    ours = models.KMeans(k, init=init, tol=1e-4).fit(mapred.from_numpy(X, splits=3), cluster=c2)
    ref = cluster.KMeans(k, init=init, n_init=1, tol=1e-4).fit(X)
    assert abs(ours.inertia_ - ref.inertia_) <= 0.01 * ref.inertia_
    assert ours.cluster_centers_.shape == (k, X.shape[1])
    inertias = [h["loss"] for h in ours.history_]
    assert all(b <= a + 1e-9 for a, b in zip(inertias, inertias[1:]))  # Lloyd never increases it


@pytest.mark.timeout(90)
def test_same_model_for_any_splits_and_workers(clusters):
    X, _ = datasets.load_digits(return_X_y=True)
    init = X[:10]
    fits = [models.KMeans(10, init=init, max_iter=20).fit(mapred.from_numpy(X, splits=s),
                                                           cluster=clusters.get(w))
            for s, w in [(1, 1), (4, 2), (9, 3)]]
    for m in fits[1:]:
        np.testing.assert_allclose(m.cluster_centers_, fits[0].cluster_centers_, rtol=1e-9, atol=1e-9)
        assert m.inertia_ == pytest.approx(fits[0].inertia_, rel=1e-9)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("init", ["k-means++", "k-means||"])
def test_seeding_finds_the_blobs_and_is_reproducible(c2, init):
    X, labels, centers = make_blobs(20_000, 5, 6, seed=3)
    ds = mapred.from_numpy(X, splits=4)
    a = models.KMeans(6, init=init, seed=1, sample_size=2000).fit(ds, cluster=c2)
    b = models.KMeans(6, init=init, seed=1, sample_size=2000).fit(ds, cluster=c2)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    # every planted centre has a fitted centre close to it
    gaps = np.sqrt(((centers[:, None, :] - a.cluster_centers_[None]) ** 2).sum(axis=2)).min(axis=1)
    assert gaps.max() < 0.2
    assert a.inertia_ == pytest.approx(len(X) * 5, rel=0.05)  # d * spread² per point


@pytest.mark.timeout(60)
def test_empty_cluster_is_reseeded_from_farthest_points(c2):
    X, _, _ = make_blobs(3000, 2, 3, seed=0)
    init = np.vstack([X[:2], [[1e6, 1e6]]])  # the third centre attracts no point
    km = models.KMeans(3, init=init, max_iter=50).fit(mapred.from_numpy(X, splits=3), cluster=c2)
    assert km.history_[0]["empty"] == 1
    assert np.bincount(km.predict(X), minlength=3).min() > 0
    ref = cluster.KMeans(3, init=init, n_init=1).fit(X)  # scikit-learn also re-seeds from far points
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=0.01)


@pytest.mark.timeout(30)
def test_k_larger_than_points_is_an_error(c2):
    with pytest.raises(ModelError, match="n_clusters=5 is larger than the number of points"):
        models.KMeans(5).fit(mapred.from_numpy(np.ones((3, 2)), splits=1), cluster=c2)
