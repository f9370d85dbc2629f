"""Naive Bayes: multinomial (text counts) and Gaussian, counts by map-reduce.

Map/reduce functions (docs/models.md):

- multinomial: map emits ``[class counts, per-class feature counts]`` of a
  block (one-hot labels times the block, dense or CSR); reduce adds.  The
  driver applies Laplace/Lidstone smoothing and keeps log-probabilities.
- Gaussian: map emits per-label (n, mean, M2) of a block; combiner and reducer
  merge them (Chan's formula); the driver adds scikit-learn's variance
  smoothing (``var_smoothing`` times the largest feature variance).
"""
from __future__ import annotations

import time

import numpy as np

from ._common import as_data, check_class_labels, sum_job, unpack
from .base import Estimator
from .persist import register
from .preprocess import merge_moments, moments
from .protocol import ClassifierMixin, DataError, sparse_ok, with_tags
from .scan import classes_from, scan


class _NB(ClassifierMixin, Estimator):
    """Prediction shared by both: argmax of the joint log-likelihood."""

    def _jll(self, X):
        raise NotImplementedError

    def predict_log_proba(self, X):
        """Log of the normalised class probabilities."""
        J = self._jll(X)
        top = J.max(axis=1, keepdims=True)
        return J - (top + np.log(np.exp(J - top).sum(axis=1, keepdims=True)))

    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """The most likely class of each row."""
        self._check_fitted()
        return self.classes_[np.argmax(self._jll(X), axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy on (X, y)."""
        hit = (self.predict(X) == np.asarray(y).ravel()).astype(float)
        return float(np.average(hit, weights=sample_weight))

    def _after_load(self) -> None:
        self.classes_ = np.asarray(self.classes_)


def _counts(tags) -> None:
    """Count data: sparse welcome, negatives refused, and (scikit-learn's own tag for this
    model) a poor score on its generic blob data expected."""
    sparse_ok(tags)
    tags.input_tags.positive_only = True
    tags.classifier_tags.poor_score = True


@register
@with_tags(_counts)
class MultinomialNB(_NB):
    """Multinomial naive Bayes with additive (Laplace when alpha=1) smoothing."""

    _param_names = ("alpha", "fit_prior", "classes")
    _array_names = ("classes_", "class_count_", "feature_count_", "feature_log_prob_",
                    "class_log_prior_")
    _attr_names = ("n_features_in_",)

    def __init__(self, alpha=1.0, fit_prior=True, classes=None):
        self.alpha, self.fit_prior, self.classes = alpha, fit_prior, classes
        self._check_params()

    def _check_params(self) -> None:
        if not isinstance(self.alpha, (int, float, np.number)) or self.alpha < 0:
            raise DataError(f"alpha must be a non-negative number, got {self.alpha!r}")

    def fit(self, dataset, y=None, *, workers=None, cluster=None):
        """Count by one map-reduce pass after the scan; labels from the data or ``classes``."""
        check_class_labels(y)
        data = as_data(dataset, y)
        runner = self._runner(workers, cluster)
        info = scan(data, runner, classes=self.classes, nonnegative=True)
        classes = self.classes_ = classes_from(info, self.classes)
        C, d, sparse = len(classes), data.n_features, data.sparse
        started = time.perf_counter()

        def stat(block):
            X, y = unpack(block, sparse, d)
            onehot = (np.searchsorted(classes, y)[:, None] == np.arange(C)[None, :]).astype(np.float64)
            counts = np.asarray(X.T @ onehot).T
            return np.concatenate([onehot.sum(axis=0), counts.ravel()])

        v = runner.run_sum(sum_job(stat, "nb.multinomial"), data.ds)
        self.class_count_, self.feature_count_ = v[:C], v[C:].reshape(C, d)
        smoothed = self.feature_count_ + self.alpha
        self.feature_log_prob_ = np.log(smoothed) - np.log(smoothed.sum(axis=1, keepdims=True))
        if self.fit_prior:
            self.class_log_prior_ = np.log(self.class_count_) - np.log(self.class_count_.sum())
        else:
            self.class_log_prior_ = np.full(C, -np.log(C))
        self.n_features_in_ = d
        runner.record(0, started)
        self.fitted_ = True
        return self

    def _jll(self, X):
        X = self._width(X)
        return np.asarray(X @ self.feature_log_prob_.T) + self.class_log_prior_


@register
class GaussianNB(_NB):
    """Gaussian naive Bayes: per-class means and variances from one merged-moments reduce."""

    _param_names = ("var_smoothing", "classes")
    _array_names = ("classes_", "class_count_", "class_prior_", "theta_", "var_")
    _attr_names = ("epsilon_", "n_features_in_")

    def __init__(self, var_smoothing=1e-9, classes=None):
        self.var_smoothing, self.classes = var_smoothing, classes
        self._check_params()

    def _check_params(self) -> None:
        if not isinstance(self.var_smoothing, (int, float, np.number)) or self.var_smoothing < 0:
            raise DataError(f"var_smoothing must be a non-negative number, got {self.var_smoothing!r}")

    def fit(self, dataset, y=None, *, workers=None, cluster=None):
        """Count by one map-reduce pass after the scan; labels from the data or ``classes``."""
        check_class_labels(y)
        data = as_data(dataset, y)
        if data.sparse:
            raise DataError("GaussianNB needs dense features (sparse input is not supported); use MultinomialNB for sparse counts")
        runner = self._runner(workers, cluster)
        info = scan(data, runner, classes=self.classes)
        self.classes_ = classes_from(info, self.classes)
        started = time.perf_counter()
        stats = moments(data, runner, by_label=True)
        d = data.n_features
        total = None
        theta, var, count = [], [], []
        for c in self.classes_:
            key = c.item() if isinstance(c, np.generic) else c
            n, mean, v = stats.get(key, (0, np.zeros(d), np.zeros(d)))
            theta.append(mean), var.append(v), count.append(n)
            vec = np.concatenate([[n], mean, v * n])
            total = vec if total is None else merge_moments(total, vec)
        overall_var = total[d + 1:] / total[0]
        self.epsilon_ = float(self.var_smoothing * overall_var.max())
        self.theta_, self.var_ = np.array(theta), np.array(var) + self.epsilon_
        self.class_count_ = np.array(count, dtype=np.float64)
        self.class_prior_ = self.class_count_ / self.class_count_.sum()
        self.n_features_in_ = d
        runner.record(0, started)
        self.fitted_ = True
        return self

    def _jll(self, X):
        X = self._width(X)
        with np.errstate(divide="ignore"):
            prior = np.log(self.class_prior_)
        norm = -0.5 * np.log(2.0 * np.pi * self.var_).sum(axis=1)
        sq = ((X[:, None, :] - self.theta_[None, :, :]) ** 2 / self.var_[None, :, :]).sum(axis=2)
        return prior + norm - 0.5 * sq
