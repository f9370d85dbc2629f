import os
import sys
import tempfile

import pytest

from mapred.testing import ClusterPool

# `mapred cluster up` records its keys per user (~/.mapred/clusters.json): keep the suite's own
os.environ.setdefault("MAPRED_HOME", tempfile.mkdtemp(prefix="mapred-home-"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.join(ROOT, "tests", "apps"))


@pytest.fixture(scope="session")
def clusters():
    """Embedded clusters of 1, 2 or 3 executors, shared by the session, killed by pid at the end."""
    pool = ClusterPool(speculation=False)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def write_files(tmp_path):
    """Write {name: text} under a fresh input dir; returns the list of paths."""
    def write(files: dict) -> list:
        d = tmp_path / "in"
        d.mkdir(exist_ok=True)
        paths = []
        for name, text in files.items():
            p = d / name
            p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
            paths.append(str(p))
        return paths
    return write
