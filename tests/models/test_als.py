"""ALS on planted low-rank ratings."""
import numpy as np
import pytest

import mapred
import models
from mapred.errors import ModelError
from models.synthetic import make_ratings


@pytest.mark.timeout(90)
def test_planted_rank5_reaches_noise_level(c2):
    users, items, ratings, U, V = make_ratings(400, 300, 5, density=0.15, noise=0.1, seed=0)
    cut = int(0.9 * len(ratings))
    train = mapred.from_numpy(users[:cut], items[:cut], ratings[:cut], splits=4)
    test = mapred.from_numpy(users[cut:], items[cut:], ratings[cut:], splits=2)
    als = models.ALS(rank=5, reg=0.01, iterations=12, seed=0).fit(train, validation=test, cluster=c2)
    rmse = [h["rmse"] for h in als.history_]
    assert rmse[-1] < 0.11          # the noise is 0.1
    assert als.history_[-1]["val_rmse"] < 0.15
    assert rmse[-1] < rmse[0] / 5
    assert models.evaluate(als, test, cluster=c2)["rmse"] == pytest.approx(als.history_[-1]["val_rmse"])
    # top-N: the best unseen items of user 0 by the planted factors are found
    seen = items[:cut][users[:cut] == 0]
    recs = [i for i, _ in als.recommend(0, 5, exclude=seen)]
    truth = U[0] @ V.T
    truth[seen] = -np.inf
    assert len(set(recs) & set(np.argsort(-truth)[:10].tolist())) >= 4
    pred = models.collect_predictions(als.predict_job(test, cluster=c2))
    np.testing.assert_allclose(pred, als.predict(users[cut:], items[cut:]))


@pytest.mark.timeout(60)
def test_same_factors_for_any_splits(clusters):
    users, items, ratings, _, _ = make_ratings(60, 50, 3, density=0.3, seed=1)
    a = models.ALS(rank=3, iterations=3).fit(mapred.from_numpy(users, items, ratings, splits=1),
                                             cluster=clusters.get(1))
    b = models.ALS(rank=3, iterations=3).fit(mapred.from_numpy(users, items, ratings, splits=5),
                                             cluster=clusters.get(2))
    np.testing.assert_allclose(a.user_factors_, b.user_factors_, rtol=1e-8, atol=1e-10)


@pytest.mark.timeout(30)
def test_bad_ratings_name_the_row(c2):
    r = np.array([1.0, 2.0, np.nan, 4.0])
    with pytest.raises(ModelError, match="row 2: rating is NaN"):
        models.ALS(rank=2).fit(mapred.from_numpy(np.arange(4), np.arange(4), r, splits=2), cluster=c2)
