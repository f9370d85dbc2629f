"""Each kind of bad input gets a clear ModelError naming the row, file or parameter."""
import numpy as np
import pytest
from sklearn import datasets

import mapred
import models
from mapred.errors import ModelError


@pytest.fixture(scope="module")
def iris():
    return datasets.load_iris(return_X_y=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("make", [
    lambda: models.LogisticRegression(epochs=2), lambda: models.LinearRegression(),
    lambda: models.GaussianNB(), lambda: models.KMeans(2), lambda: models.StandardScaler()])
def test_non_finite_feature_names_the_row(c2, iris, value, make):
    X, y = iris
    X = X.copy()
    X[97, 2] = value
    model = make()
    ds = mapred.from_numpy(X, y.astype(float), splits=3)
    with pytest.raises(ModelError, match="row 97: NaN or infinite feature"):
        model.fit(ds, cluster=c2)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("make", [lambda: models.LinearRegression(), lambda: models.LogisticRegression()])
def test_non_finite_label_names_the_row(c2, iris, make):
    X, y = iris
    y = y.astype(float)
    y[33] = np.nan
    with pytest.raises(ModelError, match=r"row 33: label \(y\) is NaN or infinite"):
        make().fit(mapred.from_numpy(X, y, splits=3), cluster=c2)


@pytest.mark.timeout(60)
def test_wrong_width(c2, iris):
    X, y = iris
    clf = models.LogisticRegression(epochs=3).fit(mapred.from_numpy(X, y, splits=2), cluster=c2)
    with pytest.raises(ModelError, match="X has 3 features per row, the model was fitted on 4"):
        clf.predict(X[:, :3])
    with pytest.raises(ModelError, match="dataset has 3 features per row, the model was fitted on 4"):
        models.evaluate(clf, mapred.from_numpy(X[:, :3], y, splits=2), cluster=c2)
    with pytest.raises(ModelError, match="validation has 3 features"):
        models.LogisticRegression(epochs=3).fit(mapred.from_numpy(X, y, splits=2),
                                                validation=mapred.from_numpy(X[:, :3], y), cluster=c2)


@pytest.mark.timeout(60)
def test_prediction_job_names_the_bad_row(c2, iris):
    X, y = iris
    clf = models.LogisticRegression(epochs=3).fit(mapred.from_numpy(X, y, splits=2), cluster=c2)
    Xbad = X.copy()
    Xbad[120, 0] = np.nan
    with pytest.raises(ModelError, match="row 120: NaN or infinite"):
        clf.predict_job(mapred.from_numpy(Xbad, splits=3), cluster=c2)


@pytest.mark.timeout(60)
def test_labels_outside_declared_classes(c2, iris):
    X, y = iris
    with pytest.raises(ModelError, match=r"row 100: label outside the declared classes \[0, 1\]"):
        models.LogisticRegression(classes=[0, 1], epochs=2).fit(mapred.from_numpy(X, y, splits=3), cluster=c2)
    clf = models.LogisticRegression(epochs=3).fit(mapred.from_numpy(X[:100], y[:100], splits=2), cluster=c2)
    with pytest.raises(ModelError, match="row 100: label 2 is not one of the model's classes"):
        models.evaluate(clf, mapred.from_numpy(X, y, splits=2), cluster=c2)
    with pytest.raises(ModelError, match="single class"):
        models.GaussianNB().fit(mapred.from_numpy(X[:50], y[:50], splits=2), cluster=c2)


@pytest.mark.timeout(60)
def test_empty_dataset(c2):
    with pytest.raises(ModelError, match="empty"):
        models.LogisticRegression().fit(np.empty((0, 3)), np.empty(0), cluster=c2)
    with pytest.raises(ModelError, match="empty"):
        models.KMeans(2).fit(mapred.from_numpy(np.empty((0, 3)), splits=1), cluster=c2)


@pytest.mark.timeout(30)
def test_bad_parameters_are_named():
    with pytest.raises(ModelError, match="solver must be"):
        models.LogisticRegression(solver="simplex")
    with pytest.raises(ModelError, match="lr must be positive"):
        models.LogisticRegression(lr=0)
    with pytest.raises(ModelError, match="n_clusters must be at least 1"):
        models.KMeans(0)
    with pytest.raises(ModelError, match="init must be"):
        models.KMeans(3, init="random")
    with pytest.raises(ModelError, match="negative feature value"):
        models.MultinomialNB().fit(np.array([[1.0, -1.0], [0.0, 2.0]]), np.array([0, 1]))


@pytest.mark.timeout(60)
def test_sparse_bad_rows_are_named_without_densifying(c2):
    import scipy.sparse as sp
    X = sp.random(40, 10_000, density=0.001, format="csr", random_state=0)
    X.data[:] = 1.0
    y = np.arange(40) % 2
    bad = X.tolil()
    bad[17, 5] = np.nan
    idx, val = models.csr_to_ell(bad.tocsr())
    data = models.Data(mapred.from_numpy(idx, val, y, splits=3), 10_000, sparse=True)
    with pytest.raises(ModelError, match="row 17: NaN or infinite feature"):
        models.MultinomialNB().fit(data, cluster=c2)
    neg = X.tolil()
    neg[29, 7] = -2.0
    idx, val = models.csr_to_ell(neg.tocsr())
    data = models.Data(mapred.from_numpy(idx, val, y, splits=3), 10_000, sparse=True)
    with pytest.raises(ModelError, match="row 29: negative feature value"):
        models.MultinomialNB().fit(data, cluster=c2)
