"""Aliased versions of a registry in the block store are pinned: keep_last rules never take them."""
import numpy as np
import pytest

import models
from mapred.storage import cleanup
from mapred.storage.minicluster import StorageCluster
from models import registry_pins
from models.registry import Registry


@pytest.fixture(scope="module")
def model(clusters):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X @ [1.0, -1.0, 0.5] > 0).astype(int)
    return models.LogisticRegression(epochs=3, seed=0).fit(X, y, cluster=clusters.get(1))


@pytest.mark.timeout(120)
def test_alias_targets_are_pinned_and_survive_a_keep_last_rule(tmp_path, model):
    with StorageCluster(tmp_path / "store", datanodes=1, replication=1, dead_timeout=2.0) as sc:
        root = sc.namenode_uri + "/models"
        reg = Registry(root)
        for _ in range(4):
            reg.register(model, "clf")
        reg.set_alias("clf", "champion", 1)
        reg.set_alias("clf", "challenger", 2)
        c = sc.client()
        assert c.pins("/models") == {"/models/clf/versions/1": ["alias clf@champion"],
                                     "/models/clf/versions/2": ["alias clf@challenger"]}
        reg.set_alias("clf", "challenger", 3)          # the old target is released, the new one pinned
        assert c.pins("/models") == {"/models/clf/versions/1": ["alias clf@champion"],
                                     "/models/clf/versions/3": ["alias clf@challenger"]}
        c.cleanup_rules(cleanup.RuleSet((cleanup.Rule("versions", "/models/*/versions/*", keep_last=1,
                                                      trash=False),)).describe())
        report = c.cleanup_run()
        assert [a["path"] for a in report["actions"]] == ["/models/clf/versions/2"]
        assert {h["path"] for h in report["honoured"]} == {"/models/clf/versions/1", "/models/clf/versions/3"}
        assert reg.load("models:/clf@champion") is not None and reg.load("models:/clf@challenger") is not None
        assert registry_pins.sync(reg) == {"pinned": [], "unpinned": []}      # already in step
        assert registry_pins.sync(Registry(str(tmp_path / "local"))) == {"pinned": [], "unpinned": []}
