"""Property: single-pass statistics equal numpy's for any data, splits and workers."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mapred
import models
from models.kmeans import lloyd_stats

LAYOUTS = st.tuples(st.integers(5, 300), st.integers(1, 6), st.integers(1, 9), st.integers(1, 3),
                    st.integers(0, 2**16))


@pytest.mark.timeout(180)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=LAYOUTS)
def test_moments_counts_and_lloyd_match_numpy(clusters, layout):
    rows, width, splits, workers, seed = layout
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, width)) * rng.uniform(0.1, 100, size=width) + rng.normal(size=width) * 50
    y = rng.integers(0, 3, size=rows)
    y[:3] = [0, 1, 2]
    c = clusters.get(workers)
    ds = mapred.from_numpy(X, y, splits=splits)
    sc = models.StandardScaler().fit(ds, cluster=c)
    np.testing.assert_allclose(sc.mean_, X.mean(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sc.var_, X.var(axis=0), rtol=1e-9, atol=1e-9)
    counts = models.MultinomialNB().fit(mapred.from_numpy(np.abs(np.round(X)), y, splits=splits), cluster=c)
    for k in range(3):
        np.testing.assert_array_equal(counts.feature_count_[k], np.abs(np.round(X))[y == k].sum(axis=0))
    k = min(3, rows)
    km = models.KMeans(k, init=X[:k], max_iter=1, tol=0.0).fit(mapred.from_numpy(X, splits=splits), cluster=c)
    sums, cnt, _, _ = lloyd_stats(X, X[:k])
    expect = np.where(cnt[:, None] > 0, sums / np.maximum(cnt, 1)[:, None], km.cluster_centers_)
    np.testing.assert_allclose(km.cluster_centers_, expect, rtol=1e-9, atol=1e-9)
