"""Evaluation, explanation and compression against scikit-learn's metrics."""
import numpy as np
import pytest
from sklearn import datasets, metrics

import mapred
import models


@pytest.mark.timeout(60)
def test_binary_metrics_equal_sklearn(c2, breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    clf = models.LogisticRegression(solver="gd", lr=0.5, epochs=60).fit(mapred.from_numpy(Xtr, ytr, splits=2),
                                                                        cluster=c2)
    got = models.evaluate(clf, mapred.from_numpy(Xte, yte, splits=3), cluster=c2)
    P, pred = clf.predict_proba(Xte), clf.predict(Xte)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(yte, pred))
    assert got["precision"] == pytest.approx(metrics.precision_score(yte, pred))
    assert got["recall"] == pytest.approx(metrics.recall_score(yte, pred))
    assert got["f1"] == pytest.approx(metrics.f1_score(yte, pred))
    assert got["log_loss"] == pytest.approx(metrics.log_loss(yte, P), rel=1e-9)
    assert got["auc"] == pytest.approx(metrics.roc_auc_score(yte, P[:, 1]), abs=2e-3)
    assert got["confusion_matrix"] == metrics.confusion_matrix(yte, pred).tolist()


@pytest.mark.timeout(60)
def test_multiclass_metrics_equal_sklearn(c2, digits):
    Xtr, Xte, ytr, yte = digits
    clf = models.LogisticRegression(solver="gd", lr=0.5, epochs=50).fit(mapred.from_numpy(Xtr, ytr, splits=2),
                                                                        cluster=c2)
    got = models.evaluate(clf, mapred.from_numpy(Xte, yte, splits=3), cluster=c2)
    P, pred = clf.predict_proba(Xte), clf.predict(Xte)
    assert got["f1"] == pytest.approx(metrics.f1_score(yte, pred, average="macro"))
    assert got["auc"] == pytest.approx(metrics.roc_auc_score(yte, P, multi_class="ovr"), abs=2e-3)
    assert got["log_loss"] == pytest.approx(metrics.log_loss(yte, P), rel=1e-9)


@pytest.mark.timeout(60)
def test_regression_and_cluster_metrics(c2):
    X, y = datasets.load_diabetes(return_X_y=True)
    lin = models.LinearRegression().fit(mapred.from_numpy(X, y, splits=2), cluster=c2)
    got = models.evaluate(lin, mapred.from_numpy(X, y, splits=3), cluster=c2)
    pred = lin.predict(X)
    assert got["r2"] == pytest.approx(metrics.r2_score(y, pred))
    assert got["mae"] == pytest.approx(metrics.mean_absolute_error(y, pred))
    assert got["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y, pred)))
    km = models.KMeans(4, seed=0).fit(mapred.from_numpy(X, splits=2), cluster=c2)
    got = models.evaluate(km, mapred.from_numpy(X, splits=3), cluster=c2)
    assert got["inertia"] == pytest.approx(km.inertia_, rel=1e-9)
    assert sum(got["cluster_sizes"]) == len(X)


@pytest.mark.timeout(60)
def test_coefficient_ranking_and_permutation_importance(c2):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 4))
    y = 3 * X[:, 2] - 1 * X[:, 0] + 0.1 * rng.standard_normal(3000)
    lin = models.LinearRegression().fit(mapred.from_numpy(X, y, splits=3), cluster=c2)
    names = ["a", "b", "c", "d"]
    ranked = models.coefficients(lin, names)
    assert [r["feature"] for r in ranked[:2]] == ["c", "a"]
    imp = models.permutation_importance(lin, mapred.from_numpy(X, y, splits=3), feature_names=names,
                                        cluster=c2)
    assert [r["feature"] for r in imp[:2]] == ["c", "a"]
    assert imp[0]["importance"] == pytest.approx(2 * 9 / 10, rel=0.1)  # R² lost: 2·var share
    assert abs(imp[-1]["importance"]) < 0.01


@pytest.mark.timeout(60)
def test_compression_reports_size_and_accuracy(c2, digits, tmp_path):
    Xtr, Xte, ytr, yte = digits
    clf = models.LogisticRegression(solver="gd", lr=0.5, epochs=50).fit(mapred.from_numpy(Xtr, ytr, splits=2),
                                                                        cluster=c2)
    test = mapred.from_numpy(Xte, yte, splits=2)
    small, rep = models.compress(clf, "float16", dataset=test, cluster=c2)
    assert rep["ratio"] == 4.0 and abs(rep["score_after"] - rep["score_before"]) < 0.01
    assert small.coef_.dtype == np.float16
    small.save(str(tmp_path / "f16"))
    assert models.load(str(tmp_path / "f16")).coef_.dtype == np.float16
    _, rep8 = models.compress(clf, "int8", dataset=test, cluster=c2)
    assert rep8["ratio"] > 7 and abs(rep8["score_after"] - rep8["score_before"]) < 0.02
    pruned, repp = models.compress(clf, "prune", sparsity=0.5, dataset=test, cluster=c2)
    assert repp["nonzero"] <= clf.coef_.size // 2 + 1
    assert repp["score_after"] > repp["score_before"] - 0.05
