"""The scikit-learn estimator protocol, without making scikit-learn a dependency.

Where scikit-learn is installed, mapred's models derive from its
``BaseEstimator`` and mixins, so ``clone``, ``cross_val_score``,
``GridSearchCV``, ``Pipeline``, tags and the HTML repr are scikit-learn's own
code working on our models.  Where it is not, ``ParamsBase`` gives the same
``get_params`` / ``set_params`` / ``repr`` from the constructor's signature,
so a model reads and copies the same way either way.

The rules that make this work are scikit-learn's: a constructor stores each
argument unchanged under its own name and sets nothing else; fitted state
ends in ``_``.  mapred models also check their parameters when constructed
and on ``set_params`` (a typo fails where it was written), which
scikit-learn only advises against.

Also here: the errors of bad input (``DataError`` is a ``ValueError`` as
scikit-learn's tools expect), ``NotFittedError``, ``ConvergenceWarning``, and
``engine``: the cluster (or the Spark runner) that fits use when the caller
(e.g. scikit-learn's ``cross_val_score``) does not pass one.
"""
from __future__ import annotations

import inspect
import threading
from contextlib import contextmanager

from mapred.errors import ModelError

try:  # scikit-learn is optional: its base classes when present, ours otherwise
    from sklearn import base as _skbase
    from sklearn.exceptions import ConvergenceWarning as _SkConvergence
    from sklearn.exceptions import NotFittedError as _SkNotFitted
except ImportError:  # pragma: no cover - exercised where scikit-learn is absent
    _skbase = None
    _SkConvergence = UserWarning
    _SkNotFitted = AttributeError

HAVE_SKLEARN = _skbase is not None


class DataError(ModelError, ValueError):
    """Bad input data or a bad parameter value; a ``ValueError`` as scikit-learn's checks expect."""


class NotFittedError(ModelError, _SkNotFitted, ValueError):
    """A model used before ``fit``; scikit-learn's own ``NotFittedError`` where it is installed."""


class ConvergenceWarning(_SkConvergence):
    """A solver stopped at its iteration cap before meeting its tolerance.

    A subclass of scikit-learn's ``ConvergenceWarning`` where it is installed,
    so its warning filters apply to mapred's models too.
    """


class ParamsBase:
    """``get_params`` / ``set_params`` / ``repr`` from the constructor's signature (no scikit-learn)."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        params = inspect.signature(init).parameters.values()
        return sorted(p.name for p in params
                      if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def get_params(self, deep: bool = True) -> dict:
        """The constructor parameters; with ``deep``, nested estimators' as ``name__param``."""
        out = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params):
        """Set parameters (``name`` or nested ``name__param``); an unknown name is a ``ValueError``."""
        valid = self.get_params(deep=True)
        nested: dict = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise DataError(f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                                f"Valid parameters are: {sorted(self._get_param_names())!r}.")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub in nested.items():
            getattr(self, name).set_params(**sub)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items()
                   if not _same(v, defaults.get(k, inspect.Parameter.empty))]
        return f"{type(self).__name__}({', '.join(changed)})"


def _same(a, b) -> bool:
    try:
        return bool(a is b or (type(a) is type(b) and a == b))
    except Exception:  # arrays and other values without a plain truth value
        return False


class _Mixin:
    """Stand-in for a scikit-learn mixin where scikit-learn is absent."""


if HAVE_SKLEARN:
    BaseEstimator = _skbase.BaseEstimator
    ClassifierMixin, RegressorMixin = _skbase.ClassifierMixin, _skbase.RegressorMixin
    ClusterMixin, TransformerMixin = _skbase.ClusterMixin, _skbase.TransformerMixin
else:  # pragma: no cover - exercised where scikit-learn is absent
    BaseEstimator = ParamsBase

    class ClassifierMixin(_Mixin):
        _estimator_type = "classifier"

    class RegressorMixin(_Mixin):
        _estimator_type = "regressor"

    class ClusterMixin(_Mixin):
        _estimator_type = "clusterer"

    class TransformerMixin(_Mixin):
        pass


class CheckedParams:
    """Parameters checked at construction and on ``set_params``: models define ``_check_params``."""

    def _check_params(self) -> None:
        """Raise ``DataError`` naming a parameter whose value cannot be used."""

    def set_params(self, **params):
        """scikit-learn's ``set_params``, then the same parameter checks as the constructor."""
        super().set_params(**params)
        self._check_params()
        return self


def with_tags(tags_of):
    """Class decorator: ``__sklearn_tags__`` = the base's tags edited by ``tags_of(tags)``.

    Without scikit-learn there are no tags to edit, and nothing is added.
    """
    def decorate(cls):
        if not HAVE_SKLEARN:  # pragma: no cover
            return cls
        parent = cls.__sklearn_tags__

        def __sklearn_tags__(self):
            tags = parent(self)
            tags_of(tags)
            return tags
        cls.__sklearn_tags__ = __sklearn_tags__
        return cls
    return decorate


def sparse_ok(tags) -> None:
    """Tags of a model that takes scipy sparse X (converted to the engine's ELL layout)."""
    tags.input_tags.sparse = True


# ---------------------------------------------------------------- the engine fits use by default

_ENGINE = threading.local()
RUNNERS = ("local", "spark")
_GLOBAL = {"cluster": None, "workers": None, "runner": "local", "spark_master": None}


def engine_defaults() -> dict:
    """The cluster, worker count and runner a fit uses when its caller names neither."""
    return dict(getattr(_ENGINE, "value", None) or _GLOBAL)


@contextmanager
def engine(cluster=None, workers=None, *, runner=None, spark_master=None, everywhere: bool = True):
    """Run every fit inside the block on ``cluster`` (or ``workers`` local executors), or on Spark.

    scikit-learn's tools call ``fit(X, y)`` with no engine options; this is how
    they reach a cluster: ``with models.engine(cluster=c): cross_val_score(...)``.
    ``runner="spark"`` sends every job a fit, an evaluation or a prediction
    job runs through mapred's Spark runner (``mapred.runners.spark``: the
    active SparkContext, or one on ``spark_master``) instead of mapred's own
    executors: ``with models.engine(runner="spark"): clf.fit(ds)``.
    ``everywhere`` (the default) also covers threads the block starts (scikit-
    learn's ``n_jobs`` threading backend); otherwise only this thread.
    """
    runner = runner or "local"
    if runner not in RUNNERS:
        raise DataError(f"runner must be one of {RUNNERS}, got {runner!r}")
    if runner == "spark" and cluster is not None:
        raise DataError("give either cluster= (a mapred cluster) or runner='spark', not both")
    value = {"cluster": cluster, "workers": workers, "runner": runner, "spark_master": spark_master}
    if everywhere:
        saved = dict(_GLOBAL)
        _GLOBAL.update(value)
        try:
            yield
        finally:
            _GLOBAL.update(saved)
        return
    saved = getattr(_ENGINE, "value", None)
    _ENGINE.value = value
    try:
        yield
    finally:
        _ENGINE.value = saved
