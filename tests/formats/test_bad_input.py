"""Bad input: a clear error naming file, split, offset or row, and the record; or quarantine and go on."""
import json
import os
import random

import pytest

import mapred
from mapred.errors import JobFailed
from mapred.formats.base import read_bad_records
from tests.formats.conftest import write_records

pytestmark = pytest.mark.timeout(120)


def total_by_group(offset, rec):
    yield rec["g"], rec["v"]


def add(key, values):
    yield key, sum(values)


def corrupt_rows(n, every, seed=1):
    """n CSV/JSONL rows of (g, v), about 1 in ``every`` damaged; returns (good rows, bad row numbers)."""
    rng = random.Random(seed)
    return [(f"g{i % 7}", i) for i in range(n)], set(rng.sample(range(n), n // every))


def test_one_percent_bad_csv_rows_are_quarantined_and_the_rest_counted_exactly(cluster, tmp_path):
    rows, bad_at = corrupt_rows(5000, 100)
    lines, expected = ["g,v"], {}
    for i, (g, v) in enumerate(rows):
        if i in bad_at:
            lines.append(f"{g},{v},extra" if i % 2 else f"{g},not-a-number")
        else:
            lines.append(f"{g},{v}")
            expected[g] = expected.get(g, 0) + v
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    job = mapred.Job(mapper=total_by_group, reducer=add, num_reducers=2, bad_records="skip", split_size=8000,
                     input_options={"types": {"v": "int"}})
    result = cluster.run(job, [str(tmp_path / "in.csv")], str(tmp_path / "out"))
    assert {k: int(v) for k, v in result} == expected
    assert result.counters["formats"]["bad_records"] == len(bad_at) == 50
    quarantined = read_bad_records(str(tmp_path / "out"))
    offsets = {len("\n".join(lines[:i + 1])) + 1 for i in bad_at}    # byte offset of each bad row
    assert {q["offset"] for q in quarantined} == offsets
    assert all(q["file"].endswith("in.csv") and q["reason"] for q in quarantined)
    by_offset = {len("\n".join(lines[:i + 1])) + 1: lines[i + 1] for i in bad_at}
    for q in quarantined:   # the row as read: its text (wrong width) or its fields (a value that does not parse)
        assert q["record"] in (by_offset[q["offset"]], by_offset[q["offset"]].split(","))


def test_bad_json_lines_fail_with_file_and_offset_or_are_skipped(cluster, tmp_path):
    good = [json.dumps({"g": "a", "v": i}) for i in range(300)]
    lines = good[:100] + ['{"g": "a", "v": oops}'] + good[100:]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    offset = sum(len(x) + 1 for x in good[:100])
    job = mapred.Job(mapper=total_by_group, reducer=add)
    with pytest.raises(JobFailed, match=rf"in\.jsonl, split 0, byte offset {offset}: not valid JSON.*oops"):
        cluster.run(job, [str(tmp_path / "in.jsonl")], str(tmp_path / "o1"))
    assert not os.path.exists(tmp_path / "o1" / "_SUCCESS")
    skip = mapred.Job(mapper=total_by_group, reducer=add, bad_records="skip")
    result = cluster.run(skip, [str(tmp_path / "in.jsonl")], str(tmp_path / "o2"))
    assert dict(result) == {"a": str(sum(range(300)))}
    [q] = read_bad_records(str(tmp_path / "o2"))
    assert q["offset"] == offset and "oops" in q["record"]


def test_broken_avro_block_is_named_by_offset_and_skipping_loses_only_that_block(tmp_path):
    from mapred.formats.base import BadRecords, FormatError
    from tests.formats.conftest import read_back
    recs = [{"i": i, "s": "x" * 20} for i in range(2000)]
    write_records(tmp_path / "a.avro", "avro", recs, sync_interval=2000, compression="null")
    data = bytearray((tmp_path / "a.avro").read_bytes())
    data[len(data) // 2] ^= 0xFF
    data[len(data) // 2 + 1] ^= 0xFF
    (tmp_path / "a.avro").write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"a\.avro, split \d+, byte offset \d+: broken Avro block"):
        read_back(tmp_path / "a.avro", "avro", 1 << 20)
    bad = BadRecords("skip")
    got, _ = read_back(tmp_path / "a.avro", "avro", 3000, bad=bad)
    assert bad.count == 1 and 1900 < len(got) < 2000 and all(r in recs for r in got)
    assert [r["i"] for r in got] == sorted(r["i"] for r in got)


def test_truncated_parquet_is_a_clear_error_at_planning(cluster, tmp_path):
    write_records(tmp_path / "t.parquet", "parquet", [{"a": i} for i in range(1000)])
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[:len(data) - 100])
    with pytest.raises(mapred.errors.InputError, match=r"t\.parquet, byte offset 0: not a readable Parquet file"):
        cluster.run(mapred.Job(output_format="jsonl"), [str(tmp_path / "t.parquet")], str(tmp_path / "o"))
    assert not os.path.exists(tmp_path / "o")


def test_truncated_parquet_is_quarantined_at_planning_when_skipping(cluster, tmp_path):
    """No footer, so no row group can be read: under skip the whole file is one bad record, named with its reason."""
    from click.testing import CliRunner

    from mapred.cli import main
    write_records(tmp_path / "good.parquet", "parquet", [{"a": i} for i in range(500)], row_group_rows=50)
    write_records(tmp_path / "t.parquet", "parquet", [{"a": i} for i in range(1000, 2000)])
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[:len(data) - 100])
    (tmp_path / "x.avro").write_bytes(b"not avro at all")       # any planner's FormatError goes the same way
    inputs = [str(tmp_path / "good.parquet"), str(tmp_path / "t.parquet")]
    job = mapred.Job(output_format="jsonl", bad_records="skip", split_size=1000)
    result = cluster.run(job, [*inputs, str(tmp_path / "x.avro")], str(tmp_path / "o"))
    assert sorted(r["a"] for _, r in result) == list(range(500))
    assert result.counters["formats"]["bad_records"] == 2
    q, a = sorted(read_bad_records(str(tmp_path / "o")), key=lambda q: q["file"])
    assert q["file"] == str(tmp_path / "t.parquet") and q["offset"] == 0 and q["record"] is None
    assert "not a readable Parquet file" in q["reason"] and "the whole file is skipped" in q["reason"]
    assert a["file"] == str(tmp_path / "x.avro") and "bad magic" in a["reason"]
    runner = CliRunner()
    r = runner.invoke(main, ["convert", *inputs, "-o", str(tmp_path / "c"), "--to", "csv", "--errors", "skip", "-w", "1"])
    assert r.exit_code == 0 and "1 bad records" in r.output, r.output
    r = runner.invoke(main, ["convert", *inputs, "-o", str(tmp_path / "d"), "--to", "csv", "-w", "1"])
    assert r.exit_code == 1 and "t.parquet, byte offset 0: not a readable Parquet file" in r.output
    assert "Traceback" not in r.output and not os.path.exists(tmp_path / "d")


def test_broken_sequence_file_block_is_skipped_to_the_next_sync_marker(tmp_path):
    from mapred.formats.base import BadRecords, FormatError
    from tests.formats.conftest import read_back
    pairs = [(i, f"v{i}") for i in range(3000)]
    write_records(tmp_path / "s.seq", "seq", pairs, block_bytes=1000)
    data = bytearray((tmp_path / "s.seq").read_bytes())
    data[len(data) // 3] ^= 0x55
    (tmp_path / "s.seq").write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"broken sequence file block: block checksum mismatch"):
        read_back(tmp_path / "s.seq", "seq", 1 << 20)
    bad = BadRecords("skip")
    got, _ = read_back(tmp_path / "s.seq", "seq", 5000, bad=bad)
    assert bad.count == 1 and 2800 < len(got) < 3000 and set(got) <= set(pairs)


def test_records_that_do_not_fit_the_output_schema(cluster, tmp_path):
    lines = [json.dumps({"id": i, "name": f"n{i}"}) for i in range(200)]
    lines[17] = json.dumps({"id": "seventeen", "name": "x"})
    lines[42] = json.dumps({"id": 42, "name": "y", "surprise": True})
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    for fmt in ("parquet", "avro"):
        job = mapred.Job(output_format=fmt, output_options={"schema": "id:int,name:str"})
        with pytest.raises(JobFailed, match=r"(field 'id' = 'seventeen' is not int|'surprise' is not in the schema)"):
            cluster.run(job, [str(tmp_path / "in.jsonl")], str(tmp_path / f"o-{fmt}"))
        skip = mapred.Job(output_format=fmt, output_options={"schema": "id:int,name:str"}, bad_records="skip")
        result = cluster.run(skip, [str(tmp_path / "in.jsonl")], str(tmp_path / f"s-{fmt}"))
        assert sorted(r["id"] for _, r in result) == [i for i in range(200) if i not in (17, 42)]
        reasons = sorted(q["reason"] for q in read_bad_records(str(tmp_path / f"s-{fmt}")))
        assert len(reasons) == 2 and any("seventeen" in r for r in reasons) and any("surprise" in r for r in reasons)


def test_csv_row_with_wrong_width_names_file_split_offset_and_record(cluster, tmp_path):
    (tmp_path / "w.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(JobFailed, match=r"w\.csv, split 0, byte offset 8: 3 fields, expected 2: record '3,4,5'"):
        cluster.run(mapred.Job(output_format="jsonl"), [str(tmp_path / "w.csv")], str(tmp_path / "o"))
