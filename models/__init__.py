"""Models as map and reduce functions on mapred's public API.

Every model is a small driver loop over ``mapred`` jobs: map computes
per-split sufficient statistics on whole numpy blocks, the combiner and reducer
add them, and the driver updates the model.  The API follows scikit-learn's
names (``fit``, ``predict``, ``coef_``, ``cluster_centers_``...), plus
``predict_job`` (batch prediction as a job), ``save`` / ``load`` (a versioned
directory of msgpack + ``.npy``, never pickle) and ``history_`` (loss, seconds
and records read per pass).

They follow scikit-learn's estimator protocol (``get_params`` / ``set_params``,
``clone``, ``Pipeline``, ``GridSearchCV``; scikit-learn's base classes where it
is installed), and ``models.engine(cluster=...)`` names the cluster that
scikit-learn's tools, which call ``fit(X, y)``, fit on.
"""
from ._common import Data, csr_to_ell, ell_to_csr
from .als import ALS
from .base import collect_predictions
from .evaluate import evaluate
from .explain import coefficients, compress, contributions, permutation_importance
from .kmeans import KMeans
from .linear import LinearRegression, LogisticRegression
from .naive_bayes import GaussianNB, MultinomialNB
from .pipeline import Pipeline
from .persist import load
from .registry import Registry, register, set_registry
from .protocol import ConvergenceWarning, DataError, NotFittedError, engine
from .selection import GridSearch, cross_validate
from .preprocess import OneHotEncoder, StandardScaler, hash_features, read_csv, split
from . import synthetic
from .text import TfidfVectorizer, make_tokenizer

__all__ = [
    "ALS", "Data", "csr_to_ell", "ell_to_csr", "collect_predictions", "evaluate", "coefficients",
    "compress", "contributions", "permutation_importance", "Pipeline", "Registry", "register", "set_registry", "KMeans", "LinearRegression",
    "LogisticRegression", "GaussianNB", "MultinomialNB", "load", "OneHotEncoder", "StandardScaler",
    "hash_features", "read_csv", "split", "synthetic", "TfidfVectorizer", "make_tokenizer",
    "ConvergenceWarning", "DataError", "NotFittedError", "engine", "GridSearch", "cross_validate",
]
