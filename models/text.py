"""Text features: tokenizer, vocabulary with document-frequency limits, counts and tf-idf.

Map/reduce functions (docs/models.md):

- document frequency: map tokenises one document (a line) and emits
  ``(term, [1, count])`` for each distinct term, plus ``(None, [1, 0])`` to count
  documents; combiner and reducer add.  The driver keeps terms within
  ``min_df`` / ``max_df`` (and the ``max_features`` most frequent), sorted, as
  scikit-learn does, so column indices match it.
- vectors: map turns a document into its sparse tf-idf row (idf broadcast);
  the driver stacks rows in document order into padded (ELL) arrays — sparse
  CSR blocks inside each task — and writes a dataset.

Documents are lines of text files (local or ``mrfs://``); a Python list of
strings is written to a temporary file first (newlines become spaces).
"""
from __future__ import annotations

import os
import re
from collections import Counter

import numpy as np

import mapred
from mapred.errors import ModelError

from ._common import Data, Runner, csr_to_ell
from .base import Estimator, translate_errors
from .persist import register
from .preprocess import write_lines

TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def make_tokenizer(lowercase=True, token_pattern=TOKEN_PATTERN, stop_words=None, ngram_range=(1, 1)):
    """A function document -> list of terms (words, then n-grams joined by a space, as sklearn)."""
    pattern = re.compile(token_pattern)
    stops = frozenset(stop_words or ())
    lo, hi = ngram_range

    def tokenize(doc: str) -> list:
        words = pattern.findall(doc.lower() if lowercase else doc)
        if stops:
            words = [w for w in words if w not in stops]
        if (lo, hi) == (1, 1):
            return words
        out = []
        for n in range(lo, hi + 1):
            out.extend(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
        return out

    return tokenize


def _inputs(docs):
    """Paths to run jobs on: text paths as given, a list of strings written to a temp file."""
    if isinstance(docs, str):
        return docs, None
    docs = list(docs)
    if docs and all(isinstance(d, str) and (d.startswith("mrfs://") or os.path.exists(d))
                    and not any(c in d for c in "\n ") for d in docs):
        return docs, None
    path = write_lines(docs)
    return path, path


def _add(key, values):
    total = None
    for v in values:
        total = list(v) if total is None else [a + b for a, b in zip(total, v)]
    yield key, total


@register
class TfidfVectorizer(Estimator):
    """Bag-of-words counts and tf-idf with scikit-learn's defaults (smooth idf, l2 norm).

    ``use_idf=False, norm=None`` gives plain counts (a CountVectorizer).
    """

    _param_names = ("lowercase", "token_pattern", "stop_words", "ngram_range", "min_df", "max_df",
                    "max_features", "use_idf", "smooth_idf", "sublinear_tf", "norm")
    _array_names = ("idf_", "terms_")
    _attr_names = ("n_docs_",)

    def __init__(self, lowercase=True, token_pattern=TOKEN_PATTERN, stop_words=None,
                 ngram_range=(1, 1), min_df=1, max_df=1.0, max_features=None, use_idf=True,
                 smooth_idf=True, sublinear_tf=False, norm="l2"):
        if norm not in ("l1", "l2", None):
            raise ModelError(f"norm must be 'l1', 'l2' or None, got {norm!r}")
        self.lowercase, self.token_pattern = lowercase, token_pattern
        self.stop_words, self.ngram_range = stop_words, ngram_range  # as given (scikit-learn's clone)
        self.min_df, self.max_df, self.max_features = min_df, max_df, max_features
        self.use_idf, self.smooth_idf, self.sublinear_tf, self.norm = use_idf, smooth_idf, sublinear_tf, norm

    def _tokenizer(self):
        stop = list(self.stop_words) if self.stop_words else None
        return make_tokenizer(self.lowercase, self.token_pattern, stop, tuple(self.ngram_range))

    # -- fit: document frequencies by map-reduce

    def fit(self, docs, *, workers=None, cluster=None):
        """Learn the vocabulary and idf from documents (a list of strings, or text file paths)."""
        paths, temp = _inputs(docs)
        tokenize = self._tokenizer()

        def mapper(offset, line):
            counts = Counter(tokenize(line))
            yield None, [1, 0]
            for term, c in counts.items():
                yield term, [1, c]

        job = mapred.Job(mapper=mapper, combiner=_add, reducer=_add, output_format="msgpack",
                         name="tfidf.df")
        try:
            pairs, _ = self._runner(workers, cluster).run(job, paths)
        finally:
            if temp:
                os.unlink(temp)
        stats = {k: v for k, v in pairs}
        n_docs = stats.pop(None, [0, 0])[0]
        if n_docs == 0:
            raise ModelError("the corpus is empty (0 documents)")
        self._build_vocabulary(stats, n_docs)
        self.fitted_ = True
        return self

    def _build_vocabulary(self, stats: dict, n_docs: int) -> None:
        lo = self.min_df if isinstance(self.min_df, int) else self.min_df * n_docs
        hi = self.max_df if isinstance(self.max_df, int) else self.max_df * n_docs
        kept = sorted(t for t, (df, _) in stats.items() if lo <= df <= hi)
        if self.max_features is not None and len(kept) > self.max_features:
            tf = np.array([stats[t][1] for t in kept])
            top = (-tf).argsort()[:self.max_features]  # scikit-learn's own call, so ties break alike
            kept = sorted(kept[i] for i in top)
        if not kept:
            raise ModelError(f"no terms remain after min_df={self.min_df} / max_df={self.max_df}")
        df = np.array([stats[t][0] for t in kept], dtype=np.float64)
        s = 1.0 if self.smooth_idf else 0.0
        self.idf_ = np.log((n_docs + s) / (df + s)) + 1.0
        self.terms_ = np.array(kept)
        self.n_docs_ = n_docs
        self._after_load()

    def _after_load(self) -> None:
        self.vocabulary_ = {t: i for i, t in enumerate(self.terms_.tolist())}
        self.ngram_range = tuple(self.ngram_range)

    def predict_job(self, *args, **kwargs):
        """A vectoriser predicts nothing; ``transform_dataset`` is its job."""
        raise ModelError("TfidfVectorizer has no predict_job; use transform_dataset(docs, y)")

    def get_feature_names_out(self) -> np.ndarray:
        """The vocabulary in column order."""
        return np.asarray(self.terms_, dtype=object)

    # -- transform

    def _row_fn(self):
        """document -> (term indices, weights): tf, optional log, idf, norm; all per document."""
        tokenize, vocab = self._tokenizer(), self.vocabulary_
        idf = self.idf_ if self.use_idf else None
        sublinear, norm = self.sublinear_tf, self.norm

        def row(doc):
            counts = Counter(t for t in tokenize(doc) if t in vocab)
            idx = np.array(sorted(vocab[t] for t in counts), dtype=np.int32)
            inv = {vocab[t]: c for t, c in counts.items()}
            val = np.array([inv[i] for i in idx], dtype=np.float64)
            if sublinear and len(val):
                val = np.log(val) + 1.0
            if idf is not None:
                val = val * idf[idx]
            if norm and len(val):
                scale = np.sqrt(val @ val) if norm == "l2" else np.abs(val).sum()
                val = val / scale if scale > 0 else val
            return idx, val

        return row

    def transform(self, docs):
        """Local transform of a list of documents to a scipy CSR matrix (for prediction)."""
        import scipy.sparse as sp
        self._check_fitted()
        row = self._row_fn()
        rows = [row(d) for d in docs]
        return _stack(rows, len(self.terms_), sp)

    def fit_transform(self, docs, **kw):
        """``fit``, then the vectors of the same documents by a job, as CSR."""
        docs = list(docs) if not isinstance(docs, str) else docs
        self.fit(docs, **kw)
        return self._transform_job(docs, **kw)

    def _transform_job(self, docs, *, workers=None, cluster=None):
        """Vectors by a map-only job; returns the CSR matrix in document order."""
        import scipy.sparse as sp
        self._check_fitted()
        paths, temp = _inputs(docs)
        row = self._row_fn()

        def mapper(offset, line):  # keyed by (file, offset): documents come back in input order
            yield (getattr(mapred.context().split, "path", ""), offset), row(line)

        job = mapred.Job(mapper=mapper, output_format="msgpack", name="tfidf.vectors")
        try:
            with translate_errors():
                pairs, _ = Runner(workers, cluster).run(job, paths)
        finally:
            if temp:
                os.unlink(temp)
        pairs.sort(key=lambda kv: kv[0])
        return _stack([tuple(v) for _, v in pairs], len(self.terms_), sp)

    def transform_dataset(self, docs, y=None, *, splits=4, path=None, workers=None, cluster=None) -> Data:
        """Vectorise documents by a job and write a sparse (padded CSR) dataset, labels beside."""
        X = self._transform_job(docs, workers=workers, cluster=cluster)
        idx, val = csr_to_ell(X)
        arrays = [idx, val]
        if y is not None:
            y = np.asarray(y)
            if len(y) != X.shape[0]:
                raise ModelError(f"y has {len(y)} labels for {X.shape[0]} documents")
            arrays.append(y)
        ds = mapred.from_numpy(*arrays, splits=max(1, min(splits, X.shape[0])), path=path)
        return Data(ds, len(self.terms_), sparse=True, has_y=y is not None)


def _stack(rows, width, sp):
    """(indices, values) per row to one CSR matrix."""
    lengths = [len(r[0]) for r in rows]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = (np.concatenate([np.asarray(r[0], dtype=np.int32) for r in rows]) if rows
               else np.empty(0, np.int32))
    data = np.concatenate([np.asarray(r[1], dtype=np.float64) for r in rows]) if rows else np.empty(0)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), width))
