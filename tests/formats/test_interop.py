"""Other tools read what mapred writes, and mapred reads what they write: pyarrow, fastavro, csv."""
import csv
import io
import json

import fastavro
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import mapred
from tests.formats.conftest import read_back, write_records

ROWS = [{"id": i, "name": ["ä", "", "x,y", 'q"uote', "new\nline"][i % 5], "score": i / 3 if i % 4 else None,
         "tags": [i, i + 1] if i % 3 else None} for i in range(500)]


def test_pyarrow_reads_mapred_parquet_with_the_same_rows_and_types(tmp_path):
    write_records(tmp_path / "m.parquet", "parquet", ROWS, row_group_rows=64)
    table = pq.read_table(tmp_path / "m.parquet")
    assert table.to_pylist() == ROWS
    assert table.schema.field("id").type == pa.int64() and table.schema.field("score").type == pa.float64()
    assert table.schema.field("tags").type == pa.list_(pa.int64())
    assert pq.ParquetFile(tmp_path / "m.parquet").metadata.num_row_groups == 8


def test_mapred_reads_pyarrow_parquet_with_projection_and_pushdown(tmp_path):
    table = pa.table({"k": pa.array(range(1000), pa.int32()), "v": [f"v{i}" for i in range(1000)],
                      "ts": pa.array(range(1000), pa.timestamp("s"))})
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=100)
    got, _ = read_back(tmp_path / "p.parquet", "parquet", 1)
    assert [r["k"] for r in got] == list(range(1000)) and got[5]["v"] == "v5"
    picked, splits = read_back(tmp_path / "p.parquet", "parquet", 1, columns=["v"], filters=[("k", ">=", 850)])
    assert picked == [{"v": f"v{i}"} for i in range(850, 1000)]
    assert len(splits) == 2 and splits[0].extra[0]["pruned"] == 8      # 8 row groups skipped on their stats


def test_parquet_output_directory_reads_as_one_dataset(cluster, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    cluster.run(mapred.Job(output_format="parquet", split_size=4000), [str(src)], str(tmp_path / "out"))
    table = pads.dataset(str(tmp_path / "out"), format="parquet").to_table()
    assert sorted(table.to_pylist(), key=lambda r: r["id"]) == ROWS


def test_fastavro_reads_mapred_avro_and_mapred_reads_fastavro(tmp_path):
    write_records(tmp_path / "m.avro", "avro", ROWS, sync_interval=200)
    with open(tmp_path / "m.avro", "rb") as f:
        assert list(fastavro.reader(f)) == ROWS
    schema = {"type": "record", "name": "T", "fields": [{"name": "a", "type": "long"},
                                                         {"name": "b", "type": ["null", "string"]}]}
    recs = [{"a": i, "b": None if i % 2 else f"é{i}"} for i in range(3000)]
    for codec in ("null", "deflate", "bzip2"):
        with open(tmp_path / f"f-{codec}.avro", "wb") as f:
            fastavro.writer(f, schema, recs, codec=codec, sync_interval=500)
        got, splits = read_back(tmp_path / f"f-{codec}.avro", "avro", 1)
        assert got == recs and len(splits) > 3


def test_csv_module_reads_mapred_csv_and_mapred_reads_csv_module(tmp_path):
    write_records(tmp_path / "m.csv", "csv", ROWS)
    with open(tmp_path / "m.csv", newline="", encoding="utf-8") as f:
        back = list(csv.DictReader(f))
    assert [r["name"] for r in back] == [r["name"] for r in ROWS]
    assert [r["id"] for r in back] == [str(r["id"]) for r in ROWS]
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL)
    w.writerow(["id", "text"])
    rows = [[i, f'line {i}\nwith "quotes", commas'] for i in range(400)]
    w.writerows(rows)
    (tmp_path / "py.csv").write_text(buf.getvalue(), encoding="utf-8", newline="")
    got, splits = read_back(tmp_path / "py.csv", "csv", 64)
    assert got == [{"id": i, "text": t} for i, t in rows] and len(splits) > 10


def blocks_to_dataset(block):
    yield None, block


def column_sums(cols):
    assert all(type(v).__name__ == "ndarray" for v in cols.values())
    yield "sum", float(cols["x"].sum())


def test_parquet_numeric_columns_reach_map_batch_as_numpy_blocks(cluster, tmp_path):
    import numpy as np
    X = np.random.default_rng(0).normal(size=(5000, 3))
    pq.write_table(pa.table({"x": X[:, 0], "y": X[:, 1], "z": X[:, 2], "s": ["a"] * 5000}),
                   tmp_path / "n.parquet", row_group_size=700)
    job = mapred.Job(map_batch=blocks_to_dataset, output_format="dataset",
                     input_options={"record": "array", "columns": ["x", "y", "z"]})
    ds = cluster.run(job, [str(tmp_path / "n.parquet")], str(tmp_path / "ds")).dataset()
    np.testing.assert_array_equal(ds.to_numpy()[0], X)
    sums = mapred.Job(map_batch=column_sums, reducer=lambda k, vs: [(k, sum(vs))], output_format="msgpack",
                      input_options={"record": "columns", "columns": ["x"]})
    assert dict(cluster.run(sums, [str(tmp_path / "n.parquet")], str(tmp_path / "s")))["sum"] == \
        pytest.approx(X[:, 0].sum())


def _avro_blocks(data: bytes) -> tuple[dict, list]:
    """``(header metadata, [(count, stored payload)])`` of a container, walked by hand (no fastavro)."""
    from mapred.formats.avro import _long, read_header
    header, sync, meta = read_header(io.BytesIO(data), "mem")
    i, blocks = len(header), []
    while i < len(data):
        count, i = _long(data, i)
        size, i = _long(data, i)
        blocks.append((count, data[i:i + size]))
        assert data[i + size:i + size + 16] == sync
        i += size + 16
    return meta, blocks


def test_zstandard_avro_both_ways_with_fastavro_and_plain_zstd(tmp_path):
    """fastavro's zstandard codec needs backports.zstd before Python 3.14; mapred gives it one (zstandard).

    Each way is checked against a decoder that is not that codec: mapred's zstd blocks are standard zstd
    frames of standard Avro block data (decompressed by hand and re-wrapped as a null-codec file that
    fastavro reads), and a file written the way Java's Avro writes zstandard (streamed frames without a
    content size) reads in mapred and in fastavro.
    """
    import zstandard

    import mapred.formats.avro as avro
    write_records(tmp_path / "m.avro", "avro", ROWS, sync_interval=300, compression="zstd")
    data = (tmp_path / "m.avro").read_bytes()
    meta, blocks = _avro_blocks(data)
    assert meta["avro.codec"] == b"zstandard" and len(blocks) > 3
    schema = json.loads(meta["avro.schema"])
    plain = [(n, zstandard.ZstdDecompressor().decompress(p)) for n, p in blocks]
    from tests.formats.test_avro_decode import _container
    assert list(fastavro.reader(io.BytesIO(_container(schema, plain)))) == ROWS
    with open(tmp_path / "m.avro", "rb") as f:
        assert list(fastavro.reader(f)) == ROWS             # fastavro itself, through the registered codec

    def streamed(payload: bytes) -> bytes:              # Java's ZstdOutputStream: no content size, two frames
        out = io.BytesIO()
        w = zstandard.ZstdCompressor().stream_writer(out, closefd=False)
        half = len(payload) // 2
        w.write(payload[:half])
        w.flush(zstandard.FLUSH_FRAME)
        w.write(payload[half:])
        w.flush(zstandard.FLUSH_FRAME)
        return out.getvalue()

    java_like = _container(schema, [(n, streamed(p)) for n, p in plain], codec="zstandard")
    (tmp_path / "j.avro").write_bytes(java_like)
    got, splits = read_back(tmp_path / "j.avro", "avro", 1)
    assert got == ROWS and len(splits) > 3
    assert list(fastavro.reader(io.BytesIO(java_like))) == ROWS
    assert avro.register_zstd() is False                  # registered once, on import; a second call changes nothing


def test_csv_null_and_empty_string_agree_with_pyarrow_both_ways(tmp_path):
    """pyarrow's convention (strings_can_be_null, quoted_strings_can_be_null=False): ,, is null, ,"", is ""."""
    import pyarrow.csv as pacsv
    recs = [{"s": [None, "", "NA", "x", 'q"', " "][i % 6], "n": None if i % 4 == 0 else i} for i in range(300)]
    write_records(tmp_path / "m.csv", "csv", recs, null_values=["", "NA"])
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert lines[1:7] == [",", '"","1"', '"NA","2"', "x,3", '"q""",', " ,5"]
    opts = pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False, null_values=["", "NA"],
                                column_types={"s": pa.string(), "n": pa.int64()})
    assert pacsv.read_csv(tmp_path / "m.csv", convert_options=opts).to_pylist() == recs
    pacsv.write_csv(pa.table({"s": pa.array([r["s"] for r in recs], pa.string()),
                              "n": pa.array([r["n"] for r in recs], pa.int64())}), tmp_path / "pa.csv")
    got, splits = read_back(tmp_path / "pa.csv", "csv", 100, null_values=["", "NA"])
    assert got == recs and len(splits) > 3
    got, _ = read_back(tmp_path / "pa.csv", "csv", 100)     # default null_values [""]: "NA" is a string
    assert got == recs
    with pytest.raises(mapred.errors.ConfigError, match="null_values must be a list of strings"):
        read_back(tmp_path / "pa.csv", "csv", 100, null_values="NA")
