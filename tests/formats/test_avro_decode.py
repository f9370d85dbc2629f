"""The Avro reader's compiled block decoder against fastavro, the reference, and its strictness."""
import io
import json
from datetime import UTC, datetime

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapred.formats import avro
from mapred.formats.avrodecode import compile_decoder
from mapred.formats.base import BadRecords, FormatError
from tests.formats.conftest import read_back

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(["", "é日本🙂", "x" * 500])
PRIMITIVES = {
    "null": st.none(), "boolean": st.booleans(), "int": st.integers(-(1 << 31), (1 << 31) - 1),
    "long": st.integers(-(1 << 63), (1 << 63) - 1), "float": st.floats(allow_nan=False, width=32),
    "double": st.floats(allow_nan=False), "string": text, "bytes": st.binary(max_size=20),
}


@st.composite
def typed(draw, depth=0, names=None):
    """``(avro type, strategy of its values)``: primitives, nullable unions, arrays, maps, enums, fixed, records."""
    names = names if names is not None else [0]
    kinds = ["prim", "union"] + (["array", "map", "enum", "fixed", "record"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds))
    names[0] += 1
    name = f"T{names[0]}"
    if kind == "prim":
        t = draw(st.sampled_from(sorted(PRIMITIVES)))
        return t, PRIMITIVES[t]
    if kind == "union":
        t = draw(st.sampled_from(sorted(set(PRIMITIVES) - {"null"})))
        branches = ["null", t] if draw(st.booleans()) else [t, "null"]
        return branches, st.none() | PRIMITIVES[t]
    if kind == "array":
        t, values = draw(typed(depth + 1, names))
        return {"type": "array", "items": t}, st.lists(values, max_size=4)
    if kind == "map":
        t, values = draw(typed(depth + 1, names))
        return {"type": "map", "values": t}, st.dictionaries(text, values, max_size=3)
    if kind == "enum":
        symbols = [f"S{i}" for i in range(draw(st.integers(1, 70)))]
        return {"type": "enum", "name": name, "symbols": symbols}, st.sampled_from(symbols)
    if kind == "fixed":
        size = draw(st.integers(0, 9))
        return {"type": "fixed", "name": name, "size": size}, st.binary(min_size=size, max_size=size)
    return draw(record_type(depth + 1, names, name))


@st.composite
def record_type(draw, depth=0, names=None, name="Top"):
    names = names if names is not None else [0]
    fields = [draw(typed(depth, names)) for _ in range(draw(st.integers(1, 5)))]
    schema = {"type": "record", "name": name,
              "fields": [{"name": f"f{i}", "type": t} for i, (t, _) in enumerate(fields)]}
    return schema, st.fixed_dictionaries({f"f{i}": v for i, (_, v) in enumerate(fields)})


@st.composite
def files(draw):
    schema, record = draw(record_type())
    return schema, draw(st.lists(record, max_size=40))


@SETTINGS
@given(case=files(), codec=st.sampled_from(["null", "deflate", "zstandard"]), size=st.integers(1, 3000),
       interval=st.integers(1, 400))
def test_compiled_decoder_reads_what_fastavro_reads(tmp_path, case, codec, size, interval):
    schema, records = case
    assert compile_decoder(schema) is not None
    path = tmp_path / "t.avro"
    with open(path, "wb") as f:
        fastavro.writer(f, schema, records, codec=codec, sync_interval=interval)
    with open(path, "rb") as f:
        want = list(fastavro.reader(f))
    got, _ = read_back(path, "avro", size)
    assert got == want


def test_logical_types_and_named_references_are_left_to_fastavro(tmp_path):
    point = {"type": "record", "name": "P", "fields": [{"name": "x", "type": "double"}]}
    schema = {"type": "record", "name": "R", "fields": [
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "a", "type": point}, {"name": "b", "type": "P"}]}
    assert compile_decoder(schema) is None
    assert compile_decoder({"type": "record", "name": "Q", "fields": [{"name": "a", "type": point},
                                                                       {"name": "b", "type": "P"}]}) is None
    ts = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    records = [{"ts": ts, "a": {"x": i / 2}, "b": {"x": -i}} for i in range(300)]
    with open(tmp_path / "l.avro", "wb") as f:
        fastavro.writer(f, schema, records, sync_interval=100)
    got, splits = read_back(tmp_path / "l.avro", "avro", 1)
    assert got == records and got[0]["ts"] == ts and len(splits) > 3


def _container(schema, blocks, codec="null"):
    """A container file from ``(count, payload)`` blocks, with fastavro's header for ``schema``."""
    head = io.BytesIO()
    fastavro.writer(head, schema, [], codec=codec)
    header = head.getvalue()
    sync = header[-16:]
    return header + b"".join(avro._zig(n) + avro._zig(len(p)) + p + sync for n, p in blocks)


def test_a_block_whose_records_do_not_use_exactly_its_bytes_is_broken(tmp_path):
    """fastavro would decode 9 of the 10 records and drop the tail silently; the compiled decoder refuses."""
    schema = {"type": "record", "name": "R", "fields": [{"name": "i", "type": "long"}, {"name": "s", "type": "string"}]}
    payload = lambda lo: b"".join(avro._zig(i) + avro._zig(2) + b"ab" for i in range(lo, lo + 10))
    (tmp_path / "c.avro").write_bytes(_container(schema, [(10, payload(0)), (9, payload(10)), (10, payload(20))]))
    with pytest.raises(FormatError, match=r"c\.avro, split 0, byte offset \d+: broken Avro block: data does not "
                                          r"decode \(9 records use \d+ of the block's \d+ bytes\)"):
        read_back(tmp_path / "c.avro", "avro", 1 << 20)
    bad = BadRecords("skip")
    got, _ = read_back(tmp_path / "c.avro", "avro", 1 << 20, bad=bad)
    assert bad.count == 1 and [r["i"] for r in got] == list(range(10)) + list(range(20, 30))


def test_batches_group_blocks_and_keep_order(tmp_path):
    schema = {"type": "record", "name": "R", "fields": [{"name": "i", "type": ["null", "long"]}]}
    recs = [{"i": i if i % 5 else None} for i in range(5000)]
    with open(tmp_path / "b.avro", "wb") as f:
        fastavro.writer(f, schema, recs, sync_interval=300)
    from mapred import formats
    from mapred.formats.base import Meter
    [split] = formats.plan(str(tmp_path / "b.avro"), "avro", 1 << 20, {})
    for size in (1, 7, 1000, 10_000):
        batches = list(formats.open_reader(split, Meter(), BadRecords()).batches(size))
        assert [r for _, b in batches for r in b] == recs
        assert all(len(b) == size for _, b in batches[:-1]) and 0 < len(batches[-1][1]) <= size
        assert [off for off, _ in batches] == sorted(off for off, _ in batches)


def test_schema_text_is_the_cache_key(tmp_path):
    schema = {"type": "record", "name": "R", "fields": [{"name": "i", "type": "int"}]}
    assert compile_decoder(schema) is compile_decoder(json.dumps(schema, sort_keys=True))
    decode = compile_decoder(schema)
    assert decode(avro._zig(5) + avro._zig(-3), 2) == [{"i": 5}, {"i": -3}]
    with pytest.raises(IndexError):
        decode(avro._zig(5), 2)          # runs past the block
