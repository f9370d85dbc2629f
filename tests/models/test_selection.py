"""cross_validate and GridSearch: equal to a hand-written loop, and to scikit-learn's GridSearchCV."""
import numpy as np
import pytest
from sklearn import datasets, model_selection

import mapred
import models


@pytest.mark.timeout(300)
def test_cross_validate_equals_a_loop_over_the_same_folds(c2):
    X, y = datasets.load_wine(return_X_y=True)
    folds = list(model_selection.StratifiedKFold(5).split(X, y))
    out = models.cross_validate(models.LogisticRegression(), X, y, cv=5, cluster=c2,
                                return_estimator=True)
    with models.engine(cluster=c2):
        loop = [models.LogisticRegression().fit(X[tr], y[tr]).score(X[te], y[te]) for tr, te in folds]
    np.testing.assert_array_equal(out["test_score"], loop)  # cv=5 picks StratifiedKFold, as sklearn
    assert set(out) == {"fit_time", "score_time", "test_score", "estimator"}
    again = models.cross_validate(models.LogisticRegression(), X, y, cv=folds, cluster=c2, n_jobs=2)
    np.testing.assert_array_equal(again["test_score"], loop)


@pytest.mark.timeout(300)
def test_cross_validate_on_an_engine_dataset(c2):
    X, y = datasets.load_iris(return_X_y=True)
    ds = mapred.from_numpy(X, y.astype(float), splits=3)
    out = models.cross_validate(models.GaussianNB(), ds, cv=3, cluster=c2, return_estimator=True)
    assert len(out["test_score"]) == 3 and (out["test_score"] > 0.85).all()
    sizes = [m.class_count_.sum() for m in out["estimator"]]
    assert sum(150 - s for s in sizes) == 150  # every row is tested exactly once


@pytest.mark.timeout(600)
def test_grid_search_picks_what_grid_search_cv_picks(c2):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    grid = {"C": [0.001, 0.01, 0.1, 1.0, 10.0]}
    folds = list(model_selection.StratifiedKFold(4).split(X, y))
    ours = models.GridSearch(models.LogisticRegression(), grid, cv=folds, n_jobs=2).fit(X, y, cluster=c2)
    with models.engine(cluster=c2):
        ref = model_selection.GridSearchCV(models.LogisticRegression(), grid, cv=folds).fit(X, y)
    assert ours.best_params_ == ref.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(ours.cv_results_["rank_test_score"], ref.cv_results_["rank_test_score"])
    assert ours.cv_results_["params"] == ref.cv_results_["params"]
    assert ours.best_estimator_.C == ref.best_params_["C"]


@pytest.mark.timeout(300)
def test_concurrent_fits_give_the_sequential_results(c2):
    """n_jobs fits submit their jobs side by side to the same embedded cluster; nothing changes."""
    X, y = datasets.load_wine(return_X_y=True)
    grid = {"C": [0.1, 1.0]}
    one = models.GridSearch(models.LogisticRegression(), grid, cv=3, n_jobs=1, refit=False).fit(X, y, cluster=c2)
    many = models.GridSearch(models.LogisticRegression(), grid, cv=3, n_jobs=6, refit=False).fit(X, y, cluster=c2)
    for i in range(3):
        np.testing.assert_array_equal(one.cv_results_[f"split{i}_test_score"], many.cv_results_[f"split{i}_test_score"])
    assert one.best_params_ == many.best_params_
