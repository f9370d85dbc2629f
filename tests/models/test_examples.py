"""The model examples run end to end on small generated data and reach their targets."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def example(name):
    path = os.path.join(ROOT, "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.timeout(120)
def test_logreg_example_three_solvers_near_generating_model():
    results, truth, _ = example("logreg").main(["--rows", "30000", "--features", "10", "--splits", "4"])
    assert set(results) == {"gd", "sgd", "async"}
    assert all(acc >= truth - 0.01 for acc in results.values()), (results, truth)


@pytest.mark.timeout(120)
def test_kmeans_example():
    fitted = example("kmeans").main(["--rows", "20000", "--features", "5", "--k", "4", "--splits", "4"])
    assert all(km.inertia_ / 20000 < 5 * 1.1 for km in fitted.values())


@pytest.mark.timeout(120)
def test_text_classify_example():
    scores, _ = example("text_classify").main(["--docs", "1500"])
    assert all(s > 0.9 for s in scores.values())


@pytest.mark.timeout(120)
def test_als_example():
    als = example("als").main(["--users", "300", "--items", "200", "--density", "0.15",
                               "--iterations", "8"])
    assert als.history_[-1]["rmse"] < 0.12
