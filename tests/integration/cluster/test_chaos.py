"""The chaos tier (``pytest -m chaos``; CI's default run leaves it out): 20 seeded master kill -9
trials, a seeded run of ``benchmarks/chaos.py`` whose every job must equal the reference, and the
README's cluster word count with the master killed mid-job (``scripts/readme_master_kill.sh``)."""
import importlib.util
import os
import subprocess

import pytest

from test_cluster_master_recovery import master_kill_trial

pytestmark = pytest.mark.chaos
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", range(101, 121))
def test_master_kill9_at_a_random_point_20_trials(tmp_path, seed):
    master_kill_trial(tmp_path, seed)


@pytest.mark.timeout(600)
def test_chaos_run_is_exact_and_loses_nothing(tmp_path):
    spec = importlib.util.spec_from_file_location("chaos_bench", os.path.join(ROOT, "benchmarks", "chaos.py"))
    chaos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chaos)
    board = chaos.run_chaos(jobs=8, seed=7, faults_per_job=2, workdir=str(tmp_path))
    assert board["jobs_exact"] == board["jobs_tried"] == 8, board["errors"]
    assert board["data_lost"] == 0
    assert sum(board["faults"].values()) >= 8 and sum(board["transport_faults"].values()) > 0


@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", [1, 2])
def test_the_readme_word_count_survives_a_master_kill_9(seed):
    script = os.path.join(ROOT, "scripts", "readme_master_kill.sh")
    done = subprocess.run(["bash", script, str(seed), "48"], capture_output=True, text=True, timeout=560)
    assert done.returncode == 0 and "EXACT" in done.stdout, done.stdout + done.stderr[-4000:]
