"""Format conversion and quarantine on a real master and workers (mapred convert --master)."""
import json

import pyarrow.dataset as pads
import pytest
from click.testing import CliRunner

import mapred
from mapred.cli import main
from mapred.formats.base import read_bad_records


@pytest.mark.timeout(120)
def test_convert_runs_on_a_cluster_and_quarantines_on_the_workers(shared_cluster, tmp_path):
    lines = [json.dumps({"id": i, "name": f"é{i}"}) for i in range(3000)]
    for i in (5, 1500, 2999):
        lines[i] = lines[i][:-3]                  # three broken JSON lines
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(main, ["convert", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "pq"),
                                  "--to", "parquet", "--errors", "skip", "--master", shared_cluster.master_addr])
    assert r.exit_code == 0, r.output
    table = pads.dataset(str(tmp_path / "pq"), format="parquet").to_table()
    assert sorted(table.column("id").to_pylist()) == [i for i in range(3000) if i not in (5, 1500, 2999)]
    bad = read_bad_records(str(tmp_path / "pq"))
    assert sorted(b["offset"] for b in bad) == [sum(len(x) + 1 for x in lines[:i]) for i in (5, 1500, 2999)]
    again = mapred.convert([str(tmp_path / "pq")], str(tmp_path / "seq"), "seq", cluster=shared_cluster.client())
    assert len(list(again)) == 2997
