"""``LogisticRegression.partial_fit``: scikit-learn SGDClassifier's contract, SVRG underneath."""
import numpy as np
import pytest
from sklearn import base, datasets, model_selection, pipeline, preprocessing

import models


@pytest.fixture(scope="module")
def cancer():
    X, y = datasets.load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = model_selection.train_test_split(X, y, test_size=0.25, random_state=0)
    sc = preprocessing.StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), ytr, yte


@pytest.mark.timeout(60)
def test_first_call_needs_classes(c2, cancer):
    Xtr, _, ytr, _ = cancer
    with models.engine(cluster=c2):
        with pytest.raises(ValueError, match="classes must be passed on the first call"):
            models.LogisticRegression(solver="sgd").partial_fit(Xtr[:20], ytr[:20])
        m = models.LogisticRegression(solver="sgd").partial_fit(Xtr[:40], ytr[:40], classes=[0, 1])
        m.partial_fit(Xtr[40:80], ytr[40:80])                       # later calls may omit them
        with pytest.raises(ValueError, match="differs from the first call"):
            m.partial_fit(Xtr[:20], ytr[:20], classes=[0, 1, 2])
    np.testing.assert_array_equal(m.classes_, [0, 1])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("solver", ["sgd", "async"])
def test_repeated_partial_fit_approaches_fit(c2, cancer, solver):
    Xtr, Xte, ytr, yte = cancer
    batches = np.array_split(np.arange(len(Xtr)), 4)
    with models.engine(cluster=c2):
        full = models.LogisticRegression(solver="sgd").fit(Xtr, ytr)
        m = models.LogisticRegression(solver=solver)
        scores = []
        for sweep in range(3):
            for idx in batches:
                m.partial_fit(Xtr[idx], ytr[idx], classes=np.array([0, 1]))
            scores.append(m.score(Xte, yte))
    assert abs(scores[-1] - full.score(Xte, yte)) <= 0.015 + 1e-12, scores
    assert m.coef_.shape == full.coef_.shape and m.n_features_in_ == Xtr.shape[1]


@pytest.mark.timeout(60)
def test_partial_fit_continues_from_fit(c2, cancer):
    Xtr, _, ytr, _ = cancer
    with models.engine(cluster=c2):
        with pytest.warns(models.ConvergenceWarning, match="max_iter=3"):
            m = models.LogisticRegression(solver="sgd", epochs=3).fit(Xtr, ytr)
        before = m.coef_.copy()
        m.partial_fit(Xtr, ytr)          # fitted already: classes_ known
    assert not np.allclose(before, m.coef_)
    # continuing from the fit's weights, not from zero: one more iteration stays close
    assert np.linalg.norm(m.coef_ - before) < np.linalg.norm(before)


@pytest.mark.timeout(60)
def test_wrong_width_and_unknown_label_are_clear(c2, cancer):
    Xtr, _, ytr, _ = cancer
    with models.engine(cluster=c2):
        m = models.LogisticRegression(solver="sgd").partial_fit(Xtr[:40], ytr[:40], classes=[0, 1])
        with pytest.raises(ValueError, match="X has 3 features, but LogisticRegression is expecting 30"):
            m.partial_fit(Xtr[:10, :3], ytr[:10])
        with pytest.raises(ValueError, match="label"):
            m.partial_fit(Xtr[:10], np.full(10, 7))


@pytest.mark.timeout(120)
def test_clone_and_pipeline(c2, cancer):
    Xtr, Xte, ytr, yte = cancer
    with models.engine(cluster=c2):
        m = models.LogisticRegression(solver="sgd", C=0.5)
        m.partial_fit(Xtr, ytr, classes=[0, 1])
        fresh = base.clone(m)
        assert fresh.get_params() == m.get_params() and not getattr(fresh, "fitted_", False)
        fresh.partial_fit(Xtr, ytr, classes=[0, 1])
        np.testing.assert_allclose(fresh.coef_, m.coef_, rtol=1e-12)   # same seed, same data
        pipe = pipeline.make_pipeline(models.StandardScaler(), models.LogisticRegression(solver="sgd"))
        pipe.fit(Xtr, ytr)
        pipe[-1].partial_fit(pipe[0].transform(Xtr), ytr)            # the fitted step continues
        assert pipe.score(Xte, yte) >= 0.9
