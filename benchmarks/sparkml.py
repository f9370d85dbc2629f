"""PySpark MLlib beside mapred's models: one local session and numpy arrays as a cached DataFrame.

``benchmarks/sgd.py --defaults``, ``benchmarks/kmeans.py --n-init`` and
``benchmarks/peers.py`` all put MLlib next to scikit-learn. They share this
so that every MLlib row is set up the same way: ``local[N]`` with N the
workers mapred gets, the arrays written once to Parquet by pyarrow (no pandas
needed), assembled into a ``features`` vector column, cached and counted
*before* the clock starts — as scikit-learn's arrays are in memory before its
clock starts.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np


def installed() -> bool:
    """Whether pyspark can be imported (the ``[bench]`` extra); MLlib rows are skipped otherwise."""
    return importlib.util.find_spec("pyspark") is not None


def session(workers: int, driver_memory: str = "4g", name: str = "mapred-bench"):
    """A quiet ``local[workers]`` SparkSession (no UI, no progress bars, errors only)."""
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master(f"local[{workers}]").appName(name)
             .config("spark.driver.memory", driver_memory)
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", workers * 2)
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def frame(spark, X: np.ndarray, y, path: str, partitions: int):
    """``X`` (and ``y`` as ``label``, if given) as a cached DataFrame of ``features`` vectors.

    ``path`` is the Parquet file written on the way (kept, so a second call
    with the same path reads it instead of writing again).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.ml.feature import VectorAssembler
    X = np.asarray(X, dtype=np.float64)
    cols = [f"f{i}" for i in range(X.shape[1])]
    if not os.path.exists(path):
        data = {c: X[:, i] for i, c in enumerate(cols)}
        if y is not None:
            data["label"] = np.asarray(y, dtype=np.float64)
        pq.write_table(pa.table(data), path)
    raw = spark.read.parquet(path).repartition(partitions)
    keep = ["features"] + (["label"] if y is not None else [])
    df = VectorAssembler(inputCols=cols, outputCol="features").transform(raw).select(*keep)
    df.cache().count()
    return df


def logistic(df, C: float, n_rows: int, max_iter: int = 100):
    """MLlib's L-BFGS logistic regression on scikit-learn's objective for the same ``C``.

    scikit-learn minimises ``C * sum(log loss) + ||w||^2 / 2``; MLlib
    minimises ``mean(log loss) + regParam * ||w||^2 / 2``, so
    ``regParam = 1 / (C * n)``; ``standardization=False`` keeps the penalty
    on the features as given, as scikit-learn's is. Returns
    ``(coef, intercept, iterations)``.
    """
    from pyspark.ml.classification import LogisticRegression
    model = LogisticRegression(maxIter=max_iter, regParam=1.0 / (C * n_rows), elasticNetParam=0.0,
                               standardization=False, tol=1e-6).fit(df)
    return (np.asarray(model.coefficients.toArray()), float(model.intercept),
            int(model.summary.totalIterations))


def kmeans(df, k: int, n_init: int = 1, max_iter: int = 300, seed: int = 0):
    """MLlib's KMeans (k-means|| seeding), best of ``n_init`` seeds: ``(centres, training cost)``.

    MLlib has no ``n_init``; running the seeds one after another is what a
    user would do to get scikit-learn's guard against a poor local optimum.
    """
    from pyspark.ml.clustering import KMeans
    best = None
    for s in range(n_init):
        model = KMeans(k=k, seed=seed + s, maxIter=max_iter, tol=1e-4).fit(df)
        cost = float(model.summary.trainingCost)
        if best is None or cost < best[1]:
            best = (np.asarray(model.clusterCenters()), cost)
    return best
