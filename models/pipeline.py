"""A chain of fitted steps served and saved as one model: e.g. tf-idf, then a classifier.

A text model takes raw strings: ``Pipeline([TfidfVectorizer(), MultinomialNB()])``
turns documents into vectors with the vectoriser it was trained with and hands
them to the classifier, so whoever predicts (``predict``, the service, a batch
prediction job) never re-implements the preprocessing.  Saved as a directory
whose ``model.msgpack`` names the steps and whose ``step-N/`` subdirectories are
each step's own saved model.
"""
from __future__ import annotations

from mapred.errors import ModelError

from .base import Estimator
from .persist import _join, load, register, save_model


@register
class Pipeline(Estimator):
    """Steps applied in order: every step but the last transforms, the last predicts."""

    def __init__(self, steps=()) -> None:
        self.steps = list(steps)
        if self.steps and all(getattr(s, "fitted_", False) for s in self.steps):
            self.fitted_ = True

    def fit(self, data, y=None, *, workers=None, cluster=None):
        """Fit each step on the previous step's output (a vectoriser takes documents and ``y``)."""
        if len(self.steps) < 2:
            raise ModelError("a Pipeline needs at least two steps (transformers, then a model)")
        kw = {"workers": workers, "cluster": cluster}
        cur = data
        for step in self.steps[:-1]:
            if hasattr(step, "terms_") or type(step).__name__ == "TfidfVectorizer":
                step.fit(cur, **kw)
                cur = step.transform_dataset(cur, y, **kw)
            else:
                step.fit(cur, **kw)
                cur = step.transform_dataset(cur, **kw)
        self.steps[-1].fit(cur, **kw)
        self.history_ = list(getattr(self.steps[-1], "history_", []))
        self.fitted_ = True
        return self

    @property
    def final(self):
        return self.steps[-1]

    def transform(self, X):
        """The input as the last step sees it."""
        self._check_fitted()
        for step in self.steps[:-1]:
            X = step.transform(X)
        return X

    def predict(self, X):
        return self.final.predict(self.transform(X))

    def predict_proba(self, X):
        return self.final.predict_proba(self.transform(X))

    def __getattr__(self, name):
        # classes_, n_clusters ... of the final step, so evaluation and serving see a classifier
        if name in ("classes_",) and self.__dict__.get("steps"):
            return getattr(self.__dict__["steps"][-1], name)
        raise AttributeError(name)

    def save(self, path: str) -> str:
        self._check_fitted()
        for i, step in enumerate(self.steps):
            step.save(_join(path, f"step-{i}"))
        return save_model(path, "Pipeline", {"steps": [type(s).__name__ for s in self.steps]},
                          {"history_": getattr(self, "history_", [])}, {})

    @classmethod
    def _load_dir(cls, path: str, meta: dict) -> Pipeline:
        names = meta.get("params", {}).get("steps", [])
        steps = [load(_join(path, f"step-{i}")) for i in range(len(names))]
        for i, (name, step) in enumerate(zip(names, steps)):
            if type(step).__name__ != name:
                raise ModelError(f"{path}/step-{i} holds a {type(step).__name__}, the pipeline names {name}")
        model = cls(steps)
        model.history_ = meta.get("attrs", {}).get("history_", [])
        return model
