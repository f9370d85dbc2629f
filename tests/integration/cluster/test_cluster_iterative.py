"""An iterative job over a cached array dataset reads the store only in its first pass."""
import numpy as np
import pytest

import mapred


def gradient_job(w_bc):
    def grad(block):
        X, y = block
        p = 1.0 / (1.0 + np.exp(-(X @ w_bc.value)))
        yield "g", (X.T @ (p - y)).tolist()

    def add(key, vectors):
        total = None
        for v in vectors:
            total = list(v) if total is None else [a + b for a, b in zip(total, v)]
        yield key, total

    return mapred.Job(map_batch=grad, combiner=add, reducer=add, num_reducers=1,
                      output_format="msgpack", name="logreg-pass")


@pytest.mark.timeout(90)
def test_five_passes_over_a_cached_dataset_read_the_store_once(make_cluster, tmp_path):
    cluster = make_cluster(workers=2, slots=2)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 5))
    y = (X @ np.arange(1.0, 6.0) > 0).astype(np.float64)
    ds = mapred.from_numpy(X, y, splits=4, path=str(tmp_path / "ds")).cache()
    w = np.zeros(5)
    w_ref = np.zeros(5)
    client = cluster.client()
    for i in range(5):
        result = gradient_job(mapred.broadcast(w)).run(ds, str(tmp_path / f"pass{i}"), cluster=client)
        g = np.array(dict(result.to_list())["g"])
        w = w - 0.001 * g
        w_ref = w_ref - 0.001 * (X.T @ (1.0 / (1.0 + np.exp(-(X @ w_ref))) - y))
        maps = result.counters["map"]
        if i == 0:
            assert maps["input_bytes"] > 0 and maps.get("cache_hits", 0) == 0
        else:   # every split came from executor memory: nothing read, nothing parsed
            assert maps["input_bytes"] == 0, f"pass {i + 1} read {maps['input_bytes']} bytes"
            assert maps["cache_hits"] == 4
            assert result.counters["job"]["maps_cache_local"] == 4
    np.testing.assert_allclose(w, w_ref, rtol=1e-9)
