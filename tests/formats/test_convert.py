"""mapred convert / split as jobs (API and CLI), and mapred fs cat/head of binary formats on mrfs://."""
import json
import os

import fastavro
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pytest
from click.testing import CliRunner

import mapred
from mapred.cli import main
from mapred.runtime.convert import convert, split

pytestmark = pytest.mark.timeout(180)


def make_csv(path, n=3000):
    lines = ["id,name,score"] + [f"{i},\"n{i}, \"\"q\"\"\",{i * 0.25}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def test_convert_csv_to_parquet_matches_pyarrows_own_reading(cluster, tmp_path):
    make_csv(tmp_path / "in.csv")
    result = mapred.convert([str(tmp_path / "in.csv")], str(tmp_path / "pq"), "parquet", cluster=cluster)
    ours = pads.dataset(str(tmp_path / "pq"), format="parquet").to_table().to_pylist()
    theirs = pacsv.read_csv(tmp_path / "in.csv").to_pylist()
    assert sorted(ours, key=lambda r: r["id"]) == theirs
    assert result.counters["map"]["input_records"] == result.counters["formats"]["records_written"] == 3000


def test_cli_convert_to_avro_and_text_with_compression(tmp_path):
    make_csv(tmp_path / "in.csv", 500)
    runner = CliRunner()
    r = runner.invoke(main, ["convert", str(tmp_path / "in.csv"), "-o", str(tmp_path / "av"), "--to", "avro",
                             "--schema", "id:int,name:str,score:float", "--compression", "deflate", "-w", "2"])
    assert r.exit_code == 0, r.output
    recs = []
    for name in sorted(os.listdir(tmp_path / "av")):
        if name.endswith(".avro"):
            with open(tmp_path / "av" / name, "rb") as f:
                recs.extend(fastavro.reader(f))
    assert [x["id"] for x in recs] == list(range(500)) and recs[3]["name"] == 'n3, "q"'
    for codec, suffix in (("zstd", ".zst"), ("gzip", ".gz")):
        out = tmp_path / f"txt-{codec}"
        r = runner.invoke(main, ["convert", str(tmp_path / "in.csv"), "-o", str(out), "--to", "jsonl",
                                 "--compression", codec, "-w", "2"])
        assert r.exit_code == 0, r.output
        assert any(n.endswith(".jsonl" + suffix) for n in os.listdir(out))
        back = mapred.Job(output_format="jsonl").run([str(out)], str(tmp_path / f"re-{codec}"), workers=1)
        assert sorted(v["id"] for _, v in back) == list(range(500))
    r = runner.invoke(main, ["convert", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "x"), "--to", "seq"])
    assert r.exit_code == 1 and "does not exist" in r.output and "Traceback" not in r.output


def test_cli_errors_skip_keeps_the_bad_rows_beside_the_output(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n{"a": 2\n{"a": 3}\n')
    r = CliRunner().invoke(main, ["convert", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o"), "--to", "csv",
                                  "--errors", "skip", "-w", "1"])
    assert r.exit_code == 0, r.output
    assert "1 bad records" in r.output
    assert (tmp_path / "o" / "_bad_records").is_dir()
    assert next((tmp_path / "o").glob("part-*.csv")).read_text() == "a\n1\n3\n"


def test_split_by_weights_is_deterministic_and_indexed(cluster, tmp_path):
    make_csv(tmp_path / "in.csv", 4000)
    a = split([str(tmp_path / "in.csv")], str(tmp_path / "s1"), weights=[0.8, 0.1, 0.1],
              names=["train", "validation", "test"], seed=7, to="jsonl", cluster=cluster)
    job = mapred.Job(output_format="jsonl", split_size=7000)
    for part in a["parts"]:
        got = [v["id"] for _, v in job.run([str(tmp_path / "s1" / part["file"])], None, cluster=cluster)]
        assert len(got) == part["records"]
    assert a["total"] == 4000 and 3000 < a["parts"][0]["records"] < 3400
    assert json.loads((tmp_path / "s1" / "_index.json").read_text()) == a


def test_fs_cat_and_head_print_binary_formats_as_json_lines_on_mrfs(cluster, tmp_path):
    from mapred.storage.minicluster import StorageCluster
    from tests.formats.conftest import write_records
    with StorageCluster(str(tmp_path / "store"), datanodes=2, replication=1, block_size=64 << 10) as store:
        uri = store.namenode_uri
        rows = [{"i": i, "s": f"é{i}"} for i in range(2000)]
        write_records(tmp_path / "r.parquet", "parquet", rows, row_group_rows=100)
        write_records(tmp_path / "r.seq", "seq", [(i, {"v": i}) for i in range(50)])
        fs = mapred.io.fs.get_fs(uri)
        for name in ("r.parquet", "r.seq"):
            with open(tmp_path / name, "rb") as f, fs.open_write(f"{uri}/d/{name}") as g:
                g.write(f.read())
        runner = CliRunner()
        r = runner.invoke(main, ["fs", "cat", f"{uri}/d/r.parquet"])
        assert r.exit_code == 0, r.output
        assert [json.loads(x) for x in r.output.splitlines()] == rows
        r = runner.invoke(main, ["fs", "head", "-n", "3", f"{uri}/d/r.seq"])
        assert [json.loads(x) for x in r.output.splitlines()] == [{"key": i, "value": {"v": i}} for i in range(3)]
        from mapred.io.inputs import plan_splits
        splits = plan_splits([f"{uri}/d/r.parquet"], 4 << 10)
        assert len(splits) > 2 and all(s.hosts for s in splits)          # row groups placed by their blocks
        out = convert([f"{uri}/d/r.parquet"], f"{uri}/out", "avro", cluster=cluster)
        assert sorted((v for _, v in out), key=lambda r: r["i"]) == rows
