"""Linear and logistic regression against scikit-learn, across solvers, splits and workers."""
import numpy as np
import pytest
from sklearn import datasets, linear_model

import mapred
import models
from mapred.errors import ModelError
from models.synthetic import make_logistic


@pytest.mark.timeout(60)
def test_exact_linear_regression_equals_sklearn(c2, make_ds):
    X, y = datasets.load_diabetes(return_X_y=True)
    ours = models.LinearRegression().fit(make_ds(X, y), cluster=c2)
    ref = linear_model.LinearRegression().fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-6)
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-6)
    assert len(ours.history_) == 1 and ours.history_[0]["records"] == len(X)


@pytest.mark.timeout(60)
def test_gd_linear_regression_r2_near_sklearn(c2, make_ds):
    X, y = datasets.load_diabetes(return_X_y=True)
    ours = models.LinearRegression(solver="gd", max_iter=200).fit(make_ds(X, y), cluster=c2)
    ref = linear_model.LinearRegression().fit(X, y)
    assert abs(ours.score(X, y) - ref.score(X, y)) < 0.005
    losses = [h["loss"] for h in ours.history_]
    assert losses[-1] < losses[0] / 5


SOLVERS = {
    "gd": dict(lr=0.5, epochs=200),
    "sgd": dict(lr=0.1, epochs=30, batch_size=16, lr_schedule="constant"),
    "async": dict(lr=0.05, epochs=20, batch_size=16, lr_schedule="constant"),
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("name", ["breast_cancer", "digits"])
def test_logistic_accuracy_within_one_point_of_sklearn(c2, make_ds, solver, name, request):
    Xtr, Xte, ytr, yte = request.getfixturevalue(name)
    ref = linear_model.LogisticRegression(max_iter=5000).fit(Xtr, ytr).score(Xte, yte)
    clf = models.LogisticRegression(solver=solver, alpha=1.0 / len(Xtr), seed=0, **SOLVERS[solver])
    clf.fit(make_ds(Xtr, ytr), cluster=c2)
    assert abs(clf.score(Xte, yte) - ref) <= 0.01 + 1e-12, (solver, name, clf.score(Xte, yte), ref)
    assert clf.coef_.shape == ((1, Xtr.shape[1]) if name == "breast_cancer" else (10, Xtr.shape[1]))
    hist = clf.history_
    assert hist[-1]["loss"] < hist[0]["loss"] and all(h["records"] == len(Xtr) for h in hist)


@pytest.mark.timeout(120)
def test_gd_models_identical_for_any_splits_and_workers(clusters, breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    X, y = datasets.load_diabetes(return_X_y=True)
    logits, linears = [], []
    for splits, workers in [(1, 1), (3, 2), (7, 3)]:
        c = clusters.get(workers)
        ds = mapred.from_numpy(Xtr, ytr, splits=splits)
        logits.append(models.LogisticRegression(solver="gd", lr=0.5, epochs=30).fit(ds, cluster=c))
        lin = models.LinearRegression(solver="gd", max_iter=30)
        linears.append(lin.fit(mapred.from_numpy(X, y, splits=splits), cluster=c))
    for m in logits[1:]:
        np.testing.assert_allclose(m.coef_, logits[0].coef_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(m.intercept_, logits[0].intercept_, rtol=1e-9, atol=1e-12)
    for m in linears[1:]:
        np.testing.assert_allclose(m.coef_, linears[0].coef_, rtol=1e-9)


@pytest.mark.timeout(120)
def test_sgd_and_async_reach_target_for_any_splits(clusters, digits):
    Xtr, Xte, ytr, yte = digits
    ref = linear_model.LogisticRegression(max_iter=5000).fit(Xtr, ytr).score(Xte, yte)
    for solver in ("sgd", "async"):
        for splits, workers in [(1, 1), (5, 3)]:
            clf = models.LogisticRegression(solver=solver, alpha=1.0 / len(Xtr), **SOLVERS[solver])
            clf.fit(mapred.from_numpy(Xtr, ytr, splits=splits), cluster=clusters.get(workers))
            assert clf.score(Xte, yte) >= ref - 0.02, (solver, splits, workers)


@pytest.mark.timeout(120)
def test_async_sgd_three_workers_reaches_generating_model(clusters):
    X, y, w, b, bayes = make_logistic(200_000, 20, seed=1)
    Xte, yte = X[150_000:], y[150_000:]
    clf = models.LogisticRegression(solver="async", lr=0.05, epochs=3, batch_size=512, seed=0)
    clf.fit(mapred.from_numpy(X[:150_000], y[:150_000], splits=6), cluster=clusters.get(3))
    truth = float(np.mean(((Xte @ w + b) > 0) == (yte == 1)))
    assert clf.score(Xte, yte) >= truth - 0.005
    st = clf.staleness_
    assert st["accepted"] > 0 and st["max"] >= 0 and st["max_staleness"] == 8
    assert sum(st["histogram"].values()) == st["accepted"] + st["rejected"]


@pytest.mark.timeout(60)
def test_sgd_is_reproducible_with_a_seed(c2, breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    ds = mapred.from_numpy(Xtr, ytr, splits=3)
    a = models.LogisticRegression(solver="sgd", epochs=5, batch_size=16, seed=7).fit(ds, cluster=c2)
    b = models.LogisticRegression(solver="sgd", epochs=5, batch_size=16, seed=7).fit(ds, cluster=c2)
    c = models.LogisticRegression(solver="sgd", epochs=5, batch_size=16, seed=8).fit(ds, cluster=c2)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


@pytest.mark.timeout(60)
def test_early_stopping_on_validation_loss(c2, breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    clf = models.LogisticRegression(solver="sgd", lr=0.5, epochs=200, n_iter_no_change=3, tol=1e-3)
    clf.fit(mapred.from_numpy(Xtr, ytr, splits=3), validation=mapred.from_numpy(Xte, yte, splits=2),
            cluster=c2)
    assert len(clf.history_) < 200
    assert all("val_loss" in h and "val_accuracy" in h for h in clf.history_)


@pytest.mark.timeout(60)
def test_l1_penalty_zeroes_weights(c2, breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    l1 = models.LogisticRegression(solver="gd", penalty="l1", alpha=0.02, lr=0.5, epochs=150)
    l1.fit(mapred.from_numpy(Xtr, ytr, splits=2), cluster=c2)
    assert (l1.coef_ == 0).sum() >= 10 and l1.score(Xte, yte) > 0.9


@pytest.mark.timeout(60)
def test_diverging_learning_rate_names_the_pass(c2):
    X, y = datasets.load_diabetes(return_X_y=True)
    with pytest.raises(ModelError, match=r"diverged at pass \d+"):
        models.LinearRegression(solver="gd", lr=50.0, momentum=0.0, max_iter=50).fit(
            mapred.from_numpy(X, y, splits=2), cluster=c2)
    Xb, yb = datasets.load_breast_cancer(return_X_y=True)  # unscaled features, huge step
    with pytest.raises(ModelError, match=r"diverged at pass \d+"):
        models.LogisticRegression(solver="gd", lr=1e4, epochs=20).fit(
            mapred.from_numpy(Xb, yb, splits=2), cluster=c2)
