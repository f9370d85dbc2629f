"""Generated data with known answers, for examples, tests and benchmarks.

Each generator is seeded and returns the truth beside the data (the weights
that made the labels, the planted factors), so a test can compare a fitted
model with the model that generated the data.
"""
from __future__ import annotations

import numpy as np


def make_logistic(n=100_000, d=20, *, seed=0, scale=1.0, dtype=np.float64):
    """X ~ N(0, 1), labels drawn from a logistic model; returns X, y, w, b, and that model's accuracy."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    w = rng.standard_normal(d) * scale / np.sqrt(d) * 3.0
    b = 0.25
    z = X @ w + b
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    bayes_accuracy = float(np.mean((z > 0) == (y == 1)))
    return X, y, w, b, bayes_accuracy


def make_blobs(n=100_000, d=10, k=5, *, seed=0, spread=1.0, dtype=np.float64):
    """k Gaussian blobs with centres ~ N(0, 10²); returns X, labels, centres."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 10.0
    labels = rng.integers(k, size=n)
    X = (centers[labels] + rng.standard_normal((n, d)) * spread).astype(dtype)
    return X, labels, centers


def make_ratings(n_users=500, n_items=400, rank=5, *, density=0.1, noise=0.1, seed=0):
    """Ratings U·V + noise on a random subset of (user, item) pairs; returns users, items, ratings, U, V."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n_users, rank))
    V = rng.standard_normal((n_items, rank))
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    order = rng.permutation(len(users))
    users, items = users[order], items[order]
    ratings = (U[users] * V[items]).sum(axis=1) + rng.normal(scale=noise, size=len(users))
    return users.astype(np.int64), items.astype(np.int64), ratings, U, V


TOPICS = {
    "sports": "game team score player coach season match win league goal ball referee stadium",
    "science": "theory experiment data energy particle physics cell biology research lab measure",
    "finance": "market stock price bank interest rate invest trade profit loss bond fund",
    "cooking": "recipe oven flour sugar butter bake salt pepper garlic onion simmer dish",
}
COMMON = "the a of and to in is it that for on with as was at by this be are from or an"


def make_corpus(n_docs=2000, *, seed=0, length=30, topic_share=0.35):
    """Documents mixing one topic's words with common words; returns docs and topic labels."""
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    vocab = {t: TOPICS[t].split() for t in names}
    common = COMMON.split()
    everything = [w for t in names for w in vocab[t]]
    labels = rng.integers(len(names), size=n_docs)
    docs = []
    for lab in labels:
        n_topic = rng.binomial(length, topic_share)
        words = list(rng.choice(vocab[names[lab]], size=n_topic))
        words += list(rng.choice(common + everything, size=length - n_topic))
        rng.shuffle(words)
        docs.append(" ".join(words))
    return docs, np.array([names[i] for i in labels])
