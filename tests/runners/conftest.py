"""Shared fixtures for the runner tests: a real text corpus and a real 3-worker cluster."""
import glob
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "cluster"))
sys.path.insert(0, os.path.join(HERE, "..", "apps", "mrjob_scripts"))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Real English text: the poems mrjob ships for its classifier example, plus mapred's own docs."""
    mrjob_examples = pytest.importorskip("mrjob.examples")
    folder = tmp_path_factory.mktemp("corpus")
    sources = sorted(glob.glob(os.path.join(os.path.dirname(mrjob_examples.__file__), "docs-to-classify", "*.txt")))
    sources += sorted(glob.glob(os.path.join(HERE, "..", "..", "docs", "*.md")))
    paths = []
    for i in range(0, len(sources), 4):      # a few files of several documents each
        path = folder / f"part{i // 4}.txt"
        with open(path, "wb") as out:
            for src in sources[i:i + 4]:
                with open(src, "rb") as f:
                    out.write(f.read().rstrip(b"\n") + b"\n")
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory):
    """Three 1-slot workers on loopback whose reducers fetch over the network; killed by pid after."""
    from clusterkit import FAST
    from mapred.runtime.procs import Cluster
    with Cluster(str(tmp_path_factory.mktemp("cluster")), workers=3, slots=1, short_circuit=False,
                 **FAST) as cluster:
        yield cluster
