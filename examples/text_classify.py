"""Text classification: tf-idf features, then naive Bayes and logistic regression.

    python examples/text_classify.py [--docs 5000] [--workers 2] [--runner spark]

The corpus is generated (four topics mixed with common words), so the example
needs no download.  Document frequencies are a word-count-like job; vectors
are sparse rows stored as padded CSR arrays in an array dataset.
"""
import argparse
import time

import models
from models.synthetic import make_corpus


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10, help="passes of the logistic model")
    ap.add_argument("--runner", choices=["local", "spark"], default="local",
                    help="run every job of the models on mapred's executors or on Spark")
    ap.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    args = ap.parse_args(argv)
    with models.engine(runner=args.runner, spark_master=args.spark_master):
        return run(args)


def run(args):

    docs, labels = make_corpus(args.docs, seed=args.seed)
    cut = int(0.8 * len(docs))
    started = time.perf_counter()
    vec = models.TfidfVectorizer(min_df=2, max_df=0.9).fit(docs[:cut], workers=args.workers)
    train = vec.transform_dataset(docs[:cut], labels[:cut], splits=4, workers=args.workers)
    test = vec.transform_dataset(docs[cut:], labels[cut:], splits=2, workers=args.workers)
    print(f"{len(vec.terms_)} terms from {cut} documents in {time.perf_counter() - started:.2f}s")
    scores, fitted = {}, {}
    for name, model in [("tf-idf + naive Bayes", models.MultinomialNB()),
                        ("tf-idf + logistic (sgd)", models.LogisticRegression(
                            solver="sgd", lr=0.5, epochs=args.epochs, batch_size=64))]:
        model.fit(train, workers=args.workers)
        m = models.evaluate(model, test, workers=args.workers)
        scores[name], fitted[name] = m["accuracy"], model
        print(f"{name}: accuracy {m['accuracy']:.4f}  macro F1 {m['f1']:.4f}")
    for c, cls in enumerate(model.classes_):
        coef = model.coef_[c]
        top = coef.argsort()[::-1][:5]
        print(f"  {cls:>8}: " + ", ".join(vec.terms_[top]))
    return scores, fitted


if __name__ == "__main__":
    main()
