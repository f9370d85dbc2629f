"""Where splits start: CSV record boundaries under quoting, compressed text, locality on mrfs://."""
import bz2
import gzip

import pytest

import mapred
from mapred.formats.compressed import compress_file
from tests.formats.conftest import read_back

pytestmark = pytest.mark.timeout(180)


def test_csv_splits_start_on_record_boundaries_inside_quoted_newlines(tmp_path):
    rows = [[i, "a\nb,\"c\"\n" * (i % 4), f"x{i}"] for i in range(300)]
    import csv as pycsv
    with open(tmp_path / "q.csv", "w", newline="") as f:
        w = pycsv.writer(f)
        w.writerow(["n", "text", "tail"])
        w.writerows(rows)
    want = [{"n": n, "text": t, "tail": x} for n, t, x in rows]
    for size in (7, 50, 333, 4096):
        # Python's csv writer leaves "" unquoted, which reads as null unless nothing is (null_values=[])
        got, splits = read_back(tmp_path / "q.csv", "csv", size, null_values=[])
        assert got == want and len(splits) > 1
        nulls, _ = read_back(tmp_path / "q.csv", "csv", size)
        assert nulls == [{**r, "text": r["text"] or None} for r in want]
        assert not any(s.extra[0].get("stream") for s in splits)


def test_bare_quotes_make_boundaries_undecidable_so_the_file_is_read_unsplit(cluster, tmp_path):
    lines = ["id,text"] + [f'{i},he said "hi" {i}' for i in range(400)]
    (tmp_path / "bare.csv").write_text("\n".join(lines) + "\n")
    _, splits = read_back(tmp_path / "bare.csv", "csv", 100)
    assert len(splits) == 1 and "undecidable" in splits[0].extra[0]["note"]
    result = cluster.run(mapred.Job(output_format="jsonl", split_size=100), [str(tmp_path / "bare.csv")],
                         str(tmp_path / "o"))
    assert sorted(r["id"] for _, r in result) == list(range(400))
    assert {r["text"] for _, r in result} >= {'he said "hi" 5'}
    assert result.counters["formats"]["unsplit_files"] == 1


def test_a_boundary_misjudged_inside_a_long_quoted_field_is_an_error_not_a_misparse(tmp_path):
    long_field = "\n".join(f"line {i}, still quoted" for i in range(400))
    (tmp_path / "long.csv").write_text(f'k,v\n1,"{long_field}"\n2,x\n')
    from mapred.formats.base import FormatError
    with pytest.raises(FormatError, match="quoted field is still open at the end of the split.*split=False"):
        read_back(tmp_path / "long.csv", "csv", 3000, probe_bytes=64, max_probe_bytes=256)
    got, splits = read_back(tmp_path / "long.csv", "csv", 3000, split=False)
    assert got == [{"k": 1, "v": long_field}, {"k": 2, "v": "x"}] and len(splits) == 1


def test_word_count_over_gzip_zstd_bzip2_and_plain_copies_is_the_same(cluster, tmp_path):
    import random

    from wordcount import job
    rng = random.Random(3)
    words = [f"w{i}" for i in range(5000)] + ["é", "日本", "fox"]
    text = "".join(" ".join(rng.choice(words) for _ in range(8)) + "\n" for _ in range(20000))
    plain = tmp_path / "t.txt"
    plain.write_text(text)
    with gzip.open(tmp_path / "t.txt.gz", "wt") as f:
        f.write(text)
    with bz2.open(tmp_path / "t.txt.bz2", "wt") as f:
        f.write(text)
    compress_file(str(plain), str(tmp_path / "t.txt.zst"), "zstd", frame_bytes=20000)
    results = {}
    small = job.with_params()
    small.split_size = 2000        # many splits of the plain and zstd copies (compressed bytes for zstd)
    for name in ("t.txt", "t.txt.gz", "t.txt.bz2", "t.txt.zst"):
        r = cluster.run(small, [str(tmp_path / name)], str(tmp_path / f"out-{name}"))
        results[name] = (sorted(r), r.counters)
    base = results["t.txt"][0]
    assert base and all(out == base for out, _ in results.values())
    assert results["t.txt.gz"][1]["formats"]["unsplittable_files"] == 1
    assert results["t.txt.bz2"][1]["formats"]["unsplittable_files"] == 1
    assert "formats" not in results["t.txt.zst"][1]                   # seekable zstd splits on its frames
    maps = {name: sum(c["job"].values()) for name, (_, c) in results.items()}   # maps by locality
    assert maps["t.txt.zst"] > 3 and maps["t.txt.gz"] == 1 and maps["t.txt.bz2"] == 1


def test_jsonl_and_csv_read_their_gzip_and_zstd_copies(tmp_path):
    import json
    recs = [{"a": i, "b": f"é{i}"} for i in range(3000)]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    compress_file(str(tmp_path / "r.jsonl"), str(tmp_path / "r.jsonl.zst"), "zstd", frame_bytes=5000)
    compress_file(str(tmp_path / "r.jsonl"), str(tmp_path / "r.jsonl.gz"), "gzip")
    for name in ("r.jsonl.zst", "r.jsonl.gz"):
        got, splits = read_back(tmp_path / name, "jsonl", 1000)
        assert got == recs and (len(splits) > 3) == name.endswith(".zst")
    (tmp_path / "r.csv").write_text("a,b\n" + "".join(f"{r['a']},{r['b']}\n" for r in recs))
    compress_file(str(tmp_path / "r.csv"), str(tmp_path / "r.csv.zst"), "zstd", frame_bytes=5000)
    compress_file(str(tmp_path / "r.csv"), str(tmp_path / "r.csv.gz"), "gzip")
    for name in ("r.csv.zst", "r.csv.gz"):
        got, _ = read_back(tmp_path / name, "csv", 1000)
        assert got == recs
