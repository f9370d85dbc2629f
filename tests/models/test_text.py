"""Tokenizer, vocabulary and tf-idf against scikit-learn's TfidfVectorizer; text classification."""
import argparse
import collections
import json
import logging
import os

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer as SkTfidf

import models


def stdlib_corpus():
    """Docstrings of a few standard-library modules: real English text that ships with Python."""
    docs = []
    for mod in (json, os, collections, argparse, logging):
        for obj in vars(mod).values():
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str) and len(doc) > 40:
                docs.append(doc)
    return docs[:300]


OPTIONS = [
    {},
    {"min_df": 2, "max_df": 0.5},
    {"max_features": 150, "sublinear_tf": True},
    {"use_idf": False, "norm": None},
    {"smooth_idf": False, "norm": "l1"},
    {"ngram_range": (1, 2), "min_df": 3, "stop_words": ["the", "of", "and"]},
    {"lowercase": False, "min_df": 0.01},
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_tfidf_equals_sklearn(c2, options):
    docs = stdlib_corpus()
    ours = models.TfidfVectorizer(**options)
    X = ours.fit_transform(docs, cluster=c2)
    ref = SkTfidf(**options)
    R = ref.fit_transform(docs)
    assert ours.get_feature_names_out().tolist() == ref.get_feature_names_out().tolist()
    assert X.shape == R.shape
    assert abs(X - R).max() < 1e-12
    assert abs(ours.transform(docs[:20]) - ref.transform(docs[:20])).max() < 1e-12
    if options.get("use_idf", True):
        np.testing.assert_allclose(ours.idf_, ref.idf_, rtol=1e-12)


@pytest.mark.timeout(60)
def test_documents_from_a_text_file(c2, tmp_path):
    docs = stdlib_corpus()[:50]
    path = tmp_path / "docs.txt"
    path.write_text("".join(d.replace("\n", " ") + "\n" for d in docs))
    ours = models.TfidfVectorizer(min_df=2).fit(str(path), cluster=c2)
    ref = SkTfidf(min_df=2).fit([d.replace("\n", " ") for d in docs])
    assert ours.terms_.tolist() == ref.get_feature_names_out().tolist()


@pytest.mark.timeout(90)
def test_tfidf_then_classifiers_on_generated_topics(c2):
    docs, labels = models.synthetic.make_corpus(1500, seed=0)
    train_docs, test_docs, ytr, yte = docs[:1200], docs[1200:], labels[:1200], labels[1200:]
    vec = models.TfidfVectorizer(min_df=2).fit(train_docs, cluster=c2)
    train = vec.transform_dataset(train_docs, ytr, splits=3, cluster=c2)
    assert train.sparse and train.n_features == len(vec.terms_)
    Xte = vec.transform(test_docs)
    nb = models.MultinomialNB().fit(train, cluster=c2)
    lr = models.LogisticRegression(solver="sgd", lr=0.5, epochs=15, batch_size=32).fit(train, cluster=c2)
    assert nb.score(Xte, yte) > 0.9
    assert lr.score(Xte, yte) > 0.9
    assert models.evaluate(lr, vec.transform_dataset(test_docs, yte, cluster=c2), cluster=c2)["accuracy"] \
        == pytest.approx(lr.score(Xte, yte))


@pytest.mark.timeout(30)
def test_tokenizer_matches_sklearn_analyzer():
    tok = models.make_tokenizer(ngram_range=(1, 2))
    ref = SkTfidf(ngram_range=(1, 2)).build_analyzer()
    text = "The quick brown Fox — jumps over 2 lazy dogs; naïve café!"
    assert tok(text) == ref(text)


@pytest.mark.timeout(60)
def test_vectors_of_several_files_in_input_order(c2, tmp_path):
    docs = stdlib_corpus()[:40]
    flat = [d.replace("\n", " ") for d in docs]
    (tmp_path / "a.txt").write_text("".join(d + "\n" for d in flat[:25]))
    (tmp_path / "b.txt").write_text("".join(d + "\n" for d in flat[25:]))
    paths = [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    ours = models.TfidfVectorizer().fit(paths, cluster=c2)
    data = ours.transform_dataset(paths, splits=2, cluster=c2)
    ref = SkTfidf().fit(flat)
    got = models.ell_to_csr(*data.ds.to_numpy(), len(ours.terms_))
    assert abs(got - ref.transform(flat)).max() < 1e-12
