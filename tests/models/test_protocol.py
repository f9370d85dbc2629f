"""scikit-learn's estimator protocol: check_estimator on every model, and its tools on our models."""
import numpy as np
import pytest
from sklearn import base, datasets, linear_model, model_selection, pipeline
from sklearn.utils.estimator_checks import check_estimator

import models
from models.protocol import ParamsBase

# The one scikit-learn check that cannot apply, and why:
NOT_APPLICABLE = {
    "check_do_not_raise_errors_in_init_or_set_params":
        "mapred checks parameters when a model is built and on set_params, so a typo fails on the "
        "line that wrote it (tests/models/test_bad_input.py::test_bad_parameters_are_named holds "
        "that contract); this check demands the opposite (no error until fit).",
}

MODELS = [models.LogisticRegression(), models.LinearRegression(),
          models.KMeans(3), models.GaussianNB(), models.MultinomialNB(), models.StandardScaler()]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_check_estimator(c2, model):
    with models.engine(cluster=c2):
        results = check_estimator(model, on_fail=None, expected_failed_checks=NOT_APPLICABLE)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed, failed
    assert len(results) > 40  # the full suite ran, not a handful


def test_params_repr_and_clone():
    m = models.LogisticRegression(C=0.5, solver="newton")
    assert repr(m) == "LogisticRegression(C=0.5, solver='newton')"
    assert m.get_params()["C"] == 0.5 and base.clone(m).get_params() == m.get_params()
    assert m.set_params(C=2).C == 2
    with pytest.raises(ValueError, match="Invalid parameter 'gamma'"):
        m.set_params(gamma=1)
    with pytest.raises(ValueError, match="C must be positive"):
        m.set_params(C=-1)
    assert base.is_classifier(m) and base.is_regressor(models.LinearRegression())
    # the same protocol without scikit-learn: ParamsBase reads the signature the same way
    assert ParamsBase.get_params(m) == m.get_params()
    assert ParamsBase.__repr__(models.KMeans(5)) == "KMeans(n_clusters=5)"


@pytest.mark.timeout(300)
def test_sklearn_tools_on_our_models(c2):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    folds = model_selection.StratifiedKFold(3)
    with models.engine(cluster=c2):
        ours = model_selection.cross_val_score(models.LogisticRegression(), X, y, cv=folds)
        pipe = pipeline.make_pipeline(models.StandardScaler(), models.LogisticRegression())
        piped = model_selection.cross_val_score(pipe, X, y, cv=folds)
        grid = model_selection.GridSearchCV(models.LogisticRegression(), {"C": [0.01, 1.0]}, cv=folds)
        grid.fit(X, y)
    ref = model_selection.cross_val_score(linear_model.LogisticRegression(solver="newton-cholesky"),
                                          X, y, cv=folds)
    np.testing.assert_allclose(ours, ref, atol=0.011)
    assert piped.mean() > 0.95
    assert grid.best_params_ == {"C": 1.0} and hasattr(grid.best_estimator_, "coef_")


@pytest.mark.timeout(120)
def test_fitted_attributes(c2):
    X, y = datasets.load_iris(return_X_y=True)
    with models.engine(cluster=c2):
        clf = models.LogisticRegression().fit(X, y)
        km = models.KMeans(3).fit(X)
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_features_in_ == 4 and clf.n_iter_ >= 1
    assert clf.coef_.shape == (3, 4) and clf.intercept_.shape == (3,)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    assert km.labels_.shape == (150,) and km.inertia_ > 0 and km.n_iter_ >= 1
    with pytest.raises(models.NotFittedError):
        models.LogisticRegression().predict(X)


def test_engine_names_a_bad_runner_and_refuses_a_cluster_with_spark(c2):
    with pytest.raises(ValueError, match="runner must be one of"):
        with models.engine(runner="dask"):
            pass
    with pytest.raises(ValueError, match="either cluster= .* or runner='spark'"):
        with models.engine(cluster=c2, runner="spark"):
            pass
    assert models.protocol.engine_defaults()["runner"] == "local"  # nothing leaked from the refused blocks
