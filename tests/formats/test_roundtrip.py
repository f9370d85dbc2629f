"""Written by mapred, read back by mapred: equal records, each exactly once, for any split size."""
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.formats.conftest import read_back, write_records

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["", "a,b", 'quo"te', '"', "line\nbreak", "cr\r\nlf", "é日本🙂", "x" * 3000])
huge_int = st.integers(-(1 << 63), (1 << 63) - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
split_size = st.integers(min_value=1, max_value=5000)


def rows(value_strategy):
    return st.integers(0, 60).flatmap(lambda k: st.lists(value_strategy, min_size=k, max_size=k))


record = st.fixed_dictionaries({"s": text, "i": huge_int | st.none(), "f": finite | st.none(),
                                "n": st.none() | st.lists(huge_int | st.none(), max_size=4)})


@SETTINGS
@given(records=rows(record), size=split_size)
def test_parquet_round_trip(tmp_path, records, size):
    path = tmp_path / "t.parquet"
    write_records(path, "parquet", records, row_group_rows=7,
                  schema=[("s", "str"), ("i", "int"), ("f", "float"), ("n", ("list", "int"))])
    got, _ = read_back(path, "parquet", size)
    assert got == records


@SETTINGS
@given(records=rows(record), size=split_size)
def test_avro_round_trip(tmp_path, records, size):
    path = tmp_path / "t.avro"
    write_records(path, "avro", records, sync_interval=64, infer_rows=3,
                  schema=[("s", "str"), ("i", "int"), ("f", "float"), ("n", ("list", "int"))])
    got, _ = read_back(path, "avro", size)
    assert got == records


json_value = st.recursive(st.none() | st.booleans() | huge_int | finite | text,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                          max_leaves=8)


@settings(SETTINGS, max_examples=25)
@given(records=rows(st.dictionaries(text, json_value, max_size=4)), size=split_size)
def test_jsonl_round_trip(tmp_path, records, size):
    path = tmp_path / "t.jsonl"
    write_records(path, "jsonl", records)
    got, _ = read_back(path, "jsonl", size)
    assert got == records


seq_value = st.recursive(st.none() | st.booleans() | huge_int | finite | text | st.binary(max_size=50),
                         lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
                         | st.dictionaries(text, inner, max_size=3), max_leaves=8)


@settings(SETTINGS, max_examples=25)
@given(pairs=rows(st.tuples(seq_value, seq_value)), size=split_size,
       compression=st.sampled_from(["none", "lz4", "zstd"]))
def test_seq_round_trip(tmp_path, pairs, size, compression):
    path = tmp_path / "t.seq"
    write_records(path, "seq", pairs, block_bytes=50, compression=compression)
    got, _ = read_back(path, "seq", size)
    assert got == pairs


csv_text = text | st.sampled_from(["NA", "null", " ", '""', ","])
csv_record = st.fixed_dictionaries({"s": csv_text | st.none(), "t": csv_text | st.none(), "i": huge_int | st.none(),
                                    "f": finite | st.none(), "b": st.booleans() | st.none()})


@SETTINGS
@given(records=rows(csv_record), size=split_size, nulls=st.sampled_from([[""], ["", "NA", "null"]]),
       record=st.sampled_from(["dict", "row"]), python=st.booleans())
def test_csv_round_trip(tmp_path, records, size, nulls, record, python):
    """None and "" stay apart (an unquoted empty field is null, a quoted one the empty string), with any
    null_values, through pyarrow's parser and Python's csv module alike."""
    path = tmp_path / "t.csv"
    write_records(path, "csv", records, null_values=nulls)
    got, splits = read_back(path, "csv", size, types={"s": "str", "t": "str", "i": "int", "f": "float", "b": "bool"},
                            null_values=nulls, record=record, python=python)
    assert got == (records if record == "dict" else [tuple(r[k] for k in records[0]) for r in records])
    assert all(not s.extra[0].get("stream") for s in splits)     # quotes never made a boundary undecidable


@SETTINGS
@given(records=rows(st.fixed_dictionaries({"s": csv_text | st.none(), "n": huge_int | st.none()})),
       nulls=st.sampled_from([[""], ["", "NA"]]))
def test_csv_nulls_survive_an_unsplit_compressed_file(tmp_path, records, nulls):
    """The stream reader (gzip: read whole by Python's csv module) tells null from "" by each record's text."""
    from mapred.formats.compressed import compress_file
    write_records(tmp_path / "t.csv", "csv", records, null_values=nulls)
    compress_file(str(tmp_path / "t.csv"), str(tmp_path / "t.csv.gz"), "gzip")
    got, splits = read_back(tmp_path / "t.csv.gz", "csv", 1, types={"s": "str", "n": "int"}, null_values=nulls)
    assert got == records and splits[0].extra[0].get("stream")


@SETTINGS
@given(lines=st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                              max_size=30), max_size=80),
       size=split_size, frame=st.integers(1, 300))
def test_seekable_zstd_text_round_trip(tmp_path, lines, size, frame):
    from mapred import formats
    from mapred.formats.base import BadRecords, Meter
    from mapred.formats.compressed import compress_file
    plain = tmp_path / "t.txt"
    plain.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    compress_file(str(plain), str(tmp_path / "t.txt.zst"), "zstd", frame_bytes=frame)
    splits = formats.plan(str(tmp_path / "t.txt.zst"), "ztext", max(size, plain.stat().st_size // 64), {})
    got = [ln for s in splits for _, ln in formats.open_reader(s, Meter(), BadRecords()).records()]
    assert got == lines
    if len(lines) > 40 and frame < 50 and size < 100:
        assert len(splits) > 1


def test_float_edge_values_survive_parquet_and_seq(tmp_path):
    records = [{"f": v} for v in (0.0, -0.0, 1e308, 5e-324, math.inf, -math.inf)]
    write_records(tmp_path / "e.parquet", "parquet", records)
    got, _ = read_back(tmp_path / "e.parquet", "parquet", 1 << 20)
    assert got == records and math.copysign(1, got[1]["f"]) == -1


@pytest.mark.timeout(120)
def test_job_round_trip_every_output_format(cluster, tmp_path):
    """Through the engine: a map-only job writes each format and another job reads it back, in order."""
    import json

    import mapred
    rows_ = [{"id": i, "name": f"n{i}\nsecond line" if i % 7 == 0 else f"é{i}", "v": i / 4} for i in range(800)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows_), encoding="utf-8")
    for fmt in ("csv", "jsonl", "parquet", "avro", "seq"):
        out = str(tmp_path / f"out-{fmt}")
        cluster.run(mapred.Job(output_format=fmt, split_size=3000), [str(src)], out)
        again = cluster.run(mapred.Job(output_format="jsonl", split_size=1500), [out], str(tmp_path / f"re-{fmt}"))
        got = sorted((v for _, v in again), key=lambda r: r["id"])
        assert got == rows_, fmt
