"""Every model with its defaults against scikit-learn's defaults on the data sets scikit-learn ships.

Raw (unscaled) data too for the default solvers: the Newton solver works in
standardised coordinates, so it must reach the same optimum either way.
"""
import numpy as np
import pytest
from sklearn import (
    cluster,
    datasets,
    linear_model,
    model_selection,
    naive_bayes,
    preprocessing,
)

import models

CLASSIFICATION = ["breast_cancer", "digits", "wine", "iris"]


def binary_tasks():
    """Derived binary tasks: one class against the rest."""
    out = {}
    for name, positive in [("iris", 0), ("wine", 1), ("digits", 3)]:
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        out[f"{name}-{positive}-vs-rest"] = (X, (y == positive).astype(int))
    return out


def load(name):
    if name in CLASSIFICATION:
        return getattr(datasets, f"load_{name}")(return_X_y=True)
    return binary_tasks()[name]


TASKS = CLASSIFICATION + sorted(binary_tasks())


def split(X, y, scaled):
    Xtr, Xte, ytr, yte = model_selection.train_test_split(X, y, test_size=0.25, random_state=0)
    if scaled:
        sc = preprocessing.StandardScaler().fit(Xtr)
        Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
    return Xtr, Xte, ytr, yte


def optimum(X, y, C=1.0):
    """scikit-learn's logistic regression driven to its optimum (Newton, tiny tolerance)."""
    return linear_model.LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12,
                                           max_iter=1000).fit(X, y)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scaled", [True, False], ids=["scaled", "raw"])
@pytest.mark.parametrize("name", TASKS)
def test_logistic_defaults_match_sklearn(c2, name, scaled):
    Xtr, Xte, ytr, yte = split(*load(name), scaled)
    with models.engine(cluster=c2):
        ours = models.LogisticRegression().fit(Xtr, ytr)
    ref = optimum(Xtr, ytr)
    # same regularisation (C=1), same optimum: coefficients within 1e-4 relative
    rel = np.linalg.norm(ours.coef_ - ref.coef_) / np.linalg.norm(ref.coef_)
    assert rel <= 1e-4, (name, rel)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-4,
                               atol=1e-4 * max(1.0, np.abs(ref.intercept_).max()))
    assert ours.n_iter_ <= 30 and len(ours.history_) <= 35  # Newton: a few passes, raw or scaled
    if scaled:  # scikit-learn's own defaults converge on standardised data
        default = linear_model.LogisticRegression().fit(Xtr, ytr).score(Xte, yte)
        assert abs(ours.score(Xte, yte) - default) <= 0.01 + 1e-12
    else:
        assert abs(ours.score(Xte, yte) - ref.score(Xte, yte)) <= 0.01 + 1e-12


@pytest.mark.timeout(120)
@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
@pytest.mark.parametrize("scaled", [True, False], ids=["scaled", "raw"])
def test_iterative_linear_regression_defaults(c2, solver, scaled):
    X, y = datasets.load_diabetes(return_X_y=True, scaled=scaled)
    ref = linear_model.LinearRegression().fit(X, y)
    with models.engine(cluster=c2):
        ours = models.LinearRegression(solver=solver).fit(X, y)
        exact = models.LinearRegression().fit(X, y)
    assert abs(ours.score(X, y) - ref.score(X, y)) <= 1e-4
    assert abs(exact.score(X, y) - ref.score(X, y)) <= 1e-4
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-4, atol=1e-4 * np.abs(ref.coef_).max())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("solver", ["exact", "lbfgs"])
def test_alpha_means_ridge_alpha(c2, solver):
    X, y = datasets.load_diabetes(return_X_y=True, scaled=False)
    ref = linear_model.Ridge(alpha=3.0).fit(X, y)
    with models.engine(cluster=c2):
        ours = models.LinearRegression(solver=solver, alpha=3.0).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-4, atol=1e-4 * np.abs(ref.coef_).max())
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-4)


@pytest.mark.timeout(120)
def test_C_means_sklearn_C(c2):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    for C in (0.01, 100.0):
        with models.engine(cluster=c2):
            ours = models.LogisticRegression(C=C).fit(X, y)
        ref = optimum(X, y, C=C)
        assert np.linalg.norm(ours.coef_ - ref.coef_) / np.linalg.norm(ref.coef_) <= 1e-4, C


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scaled", [True, False], ids=["scaled", "raw"])
@pytest.mark.parametrize("name,k", [("iris", 3), ("wine", 3), ("breast_cancer", 2), ("digits", 10)])
def test_kmeans_defaults_within_two_percent_of_best_of_ten(c2, name, k, scaled):
    X, _ = getattr(datasets, f"load_{name}")(return_X_y=True)
    if scaled:
        X = preprocessing.StandardScaler().fit_transform(X)
    best = cluster.KMeans(k, n_init=10, random_state=0).fit(X).inertia_
    with models.engine(cluster=c2):
        ours = models.KMeans(k).fit(X)
    assert ours.inertia_ <= 1.02 * best, (name, ours.inertia_, best)
    assert ours.labels_.shape == (len(X),) and ours.cluster_centers_.shape == (k, X.shape[1])
    np.testing.assert_array_equal(ours.labels_, ours.predict(X))
    assert ours.inertia_ == pytest.approx(-ours.score(X), rel=1e-9)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", CLASSIFICATION)
def test_naive_bayes_defaults_identical(c2, name):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    with models.engine(cluster=c2):
        g = models.GaussianNB().fit(X, y)
        m = models.MultinomialNB().fit(X, y)
    np.testing.assert_array_equal(g.predict(X), naive_bayes.GaussianNB().fit(X, y).predict(X))
    np.testing.assert_array_equal(m.predict(X), naive_bayes.MultinomialNB().fit(X, y).predict(X))


@pytest.mark.timeout(60)
def test_convergence_warning_at_max_iter(c2):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    with models.engine(cluster=c2):
        with pytest.warns(models.ConvergenceWarning, match="max_iter=2"):
            models.LogisticRegression(max_iter=2).fit(X, y)
        with pytest.warns(models.ConvergenceWarning, match="max_iter=1"):
            models.KMeans(3, max_iter=1, n_init=1).fit(X)
        with pytest.warns(models.ConvergenceWarning, match="max_iter=2"):
            models.LinearRegression(solver="lbfgs", max_iter=2).fit(X, X[:, 0] * 2 + X[:, 3])


def split_at(X, y, scaled, seed):
    Xtr, Xte, ytr, yte = model_selection.train_test_split(X, y, test_size=0.25, random_state=seed)
    if scaled:
        sc = preprocessing.StandardScaler().fit(Xtr)
        Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
    return Xtr, Xte, ytr, yte


def sklearn_reference(Xtr, ytr, scaled):
    """scikit-learn's ``LogisticRegression()`` on scaled data; on raw data, where its lbfgs
    default stops short of its optimum, the same model driven to the optimum."""
    return linear_model.LogisticRegression().fit(Xtr, ytr) if scaled else optimum(Xtr, ytr)


SMALL = ["breast_cancer", "wine", "iris", "iris-0-vs-rest", "wine-1-vs-rest"]
# digits (1,347 training rows, 64 features, nearly separable) needs the full 100 SVRG iterations
# (about a minute): its splits 0 run here, all four in docs/models.md's table
SGD_CASES = ([(name, seed, True) for name in SMALL[:3] for seed in range(4)]
             + [(name, 0, True) for name in SMALL[3:]]
             + [(name, 0, False) for name in SMALL[:3]]
             + [pytest.param(name, 0, True, marks=pytest.mark.slow)
                for name in ("digits", "digits-3-vs-rest")])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name,seed,scaled", SGD_CASES)
def test_sgd_defaults_within_one_point_of_sklearn(c2, name, seed, scaled):
    """SVRG on internally standardised features: variance-reduced steps reach the regularised
    optimum, so the accuracy is scikit-learn's to within one point, raw data too."""
    Xtr, Xte, ytr, yte = split_at(*load(name), scaled, seed)
    ref = sklearn_reference(Xtr, ytr, scaled).score(Xte, yte)
    with models.engine(cluster=c2):
        ours = models.LogisticRegression(solver="sgd").fit(Xtr, ytr)
    assert abs(ours.score(Xte, yte) - ref) <= 0.01 + 1e-12, (name, seed, ours.score(Xte, yte), ref)
    assert all(np.isfinite(h["loss"]) for h in ours.history_)
    assert ours.n_iter_ == len(ours.history_)


ASYNC_CASES = [(name, 0, True) for name in ("breast_cancer", "wine", "iris")] + [("iris", 2, False)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name,seed,scaled", ASYNC_CASES)
def test_async_defaults_within_half_a_point_of_sync(c2, name, seed, scaled):
    """Async SVRG converges to the same optimum as sync, so their accuracies agree to half a
    point: on these 38-143-row test sets that means identical predictions."""
    Xtr, Xte, ytr, yte = split_at(*load(name), scaled, seed)
    with models.engine(cluster=c2):
        sync = models.LogisticRegression(solver="sgd").fit(Xtr, ytr)
        asyn = models.LogisticRegression(solver="async").fit(Xtr, ytr)
    assert abs(asyn.score(Xte, yte) - sync.score(Xte, yte)) <= 0.005 + 1e-12, (name, seed)
    ref = sklearn_reference(Xtr, ytr, scaled).score(Xte, yte)
    assert abs(asyn.score(Xte, yte) - ref) <= 0.01 + 1e-12
    assert asyn.staleness_["accepted"] > 0


@pytest.mark.timeout(120)
def test_sgd_defaults_do_not_diverge_on_raw_data(c2):
    X, y = datasets.load_breast_cancer(return_X_y=True)  # features from 1e-3 to 4e3
    Xtr, Xte, ytr, yte = split(X, y, scaled=False)
    with models.engine(cluster=c2):
        ours = models.LogisticRegression(solver="sgd").fit(Xtr, ytr)
    assert ours.score(Xte, yte) >= optimum(Xtr, ytr).score(Xte, yte) - 0.01 - 1e-12
    assert all(np.isfinite(h["loss"]) for h in ours.history_)


@pytest.mark.timeout(120)
def test_old_adam_recipe_still_available(c2):
    Xtr, Xte, ytr, yte = split(*load("iris"), scaled=True)
    with models.engine(cluster=c2):
        ours = models.LogisticRegression(solver="sgd", lr_schedule="adam").fit(Xtr, ytr)
    assert ours.score(Xte, yte) >= 0.9


@pytest.mark.timeout(300)
def test_sgd_l1_penalty_is_the_l1_prox(c2):
    """penalty="l1" under SVRG is applied by its soft threshold (sync, and by the async
    holder): coefficients are exactly zero where they vanish, and the accuracy is scikit-learn's
    L1 model's to within a point."""
    Xtr, Xte, ytr, yte = split(*load("breast_cancer"), scaled=True)
    ref = linear_model.LogisticRegression(penalty="l1", solver="liblinear", C=1.0).fit(Xtr, ytr)
    with models.engine(cluster=c2):
        for solver in ("sgd", "async"):
            ours = models.LogisticRegression(solver=solver, penalty="l1", epochs=30)
            with pytest.warns(models.ConvergenceWarning):
                ours.fit(Xtr, ytr)
            zeros = int((ours.coef_ == 0).sum())
            assert 5 <= zeros < Xtr.shape[1], (solver, zeros)
            assert abs(ours.score(Xte, yte) - ref.score(Xte, yte)) <= 0.01 + 1e-12, solver
