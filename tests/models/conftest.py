"""Shared fixtures of the models tests: a 2-executor embedded cluster and scikit-learn's data."""
import pytest
from sklearn import datasets, model_selection, preprocessing

import mapred


@pytest.fixture(scope="session")
def c2(clusters):
    """The 2-executor cluster every models test runs on (the suite must fit 2 cores)."""
    return clusters.get(2)


def scaled_split(name, test_size=0.25):
    """A bundled scikit-learn dataset, split and standardised the same way for both libraries."""
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    Xtr, Xte, ytr, yte = model_selection.train_test_split(X, y, test_size=test_size, random_state=0)
    scaler = preprocessing.StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr, yte


@pytest.fixture(scope="session")
def breast_cancer():
    return scaled_split("breast_cancer")


@pytest.fixture(scope="session")
def digits():
    return scaled_split("digits")


def ds(*arrays, splits=3):
    return mapred.from_numpy(*arrays, splits=splits)


@pytest.fixture
def make_ds():
    return ds
