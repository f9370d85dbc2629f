"""Naive Bayes predictions identical to scikit-learn's."""
import numpy as np
import pytest
from sklearn import datasets, naive_bayes

import mapred
import models


@pytest.mark.timeout(60)
@pytest.mark.parametrize("alpha", [1.0, 0.1])
def test_multinomial_nb_identical_to_sklearn(c2, alpha):
    X, y = datasets.load_digits(return_X_y=True)
    ours = models.MultinomialNB(alpha=alpha).fit(mapred.from_numpy(X, y, splits=4), cluster=c2)
    ref = naive_bayes.MultinomialNB(alpha=alpha).fit(X, y)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.feature_log_prob_, ref.feature_log_prob_, rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_gaussian_nb_identical_to_sklearn(c2, name):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    ours = models.GaussianNB().fit(mapred.from_numpy(X, y, splits=3), cluster=c2)
    ref = naive_bayes.GaussianNB().fit(X, y)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.theta_, ref.theta_, rtol=1e-10)
    np.testing.assert_allclose(ours.var_, ref.var_, rtol=1e-8)


@pytest.mark.timeout(60)
def test_string_labels_and_sparse_counts(c2):
    docs, labels = models.synthetic.make_corpus(400, seed=2)
    vec = models.TfidfVectorizer(use_idf=False, norm=None)
    vec.fit(docs, cluster=c2)
    data = vec.transform_dataset(docs, labels, splits=3, cluster=c2)
    ours = models.MultinomialNB().fit(data, cluster=c2)
    Xd = vec.transform(docs)
    ref = naive_bayes.MultinomialNB().fit(Xd, labels)
    np.testing.assert_array_equal(ours.predict(Xd), ref.predict(Xd))
    assert ours.classes_.tolist() == sorted(set(labels))
