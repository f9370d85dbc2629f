"""Read throughput of one table in every format through a map-only job, and CSV → Parquet conversion.

    python benchmarks/formats.py --mb 150            # the table as ~150 MB of CSV
    python benchmarks/formats.py --mb 1000 --workers 8   # the issue's 1 GB, on a machine that has the cores

One seeded table (an id, two floats, an int category, a short string) is
written once as CSV, JSON lines, Parquet, Avro and the mapred sequence file.
Each is then read by a map-only mapred job whose ``map_batch`` only counts
its batch (so the time is the reader's and the engine's), reported as MB/s of
that file and rows/s; Parquet is read twice, as dict records and as Arrow
tables (``input_options={"record": "arrow"}``, no Python per row).  Beside
them, in the same run: ``pyarrow.parquet.read_table`` of the same Parquet file
(multithreaded C++, the ceiling) and ``to_pylist`` of it (what dict records
cost in pyarrow itself), and ``fastavro.reader`` over the Avro parts in one
process (what mapred's Avro reader decodes faster, by a compiled decoder).  Then ``mapred convert`` CSV → Parquet against
``pyarrow.csv.read_csv`` + ``pyarrow.parquet.write_table``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks._common import scratch, table


def count_only(batch):
    return ()


def make_table(path_csv: str, mb: int, seed: int = 0) -> int:
    """Write about ``mb`` MB of CSV; returns the row count."""
    import numpy as np
    rng = np.random.default_rng(seed)
    rows, written = 0, 0
    with open(path_csv, "w") as f:
        f.write("id,x,y,cat,name\n")
        while written < mb << 20:
            n = 200_000
            ids = np.arange(rows, rows + n)
            x, y = rng.normal(size=n), rng.random(size=n) * 1000
            cat = rng.integers(0, 50, size=n)
            chunk = "".join(f"{i},{a:.6f},{b:.3f},{c},name{c}_{i % 1000}\n"
                            for i, a, b, c in zip(ids.tolist(), x.tolist(), y.tolist(), cat.tolist()))
            f.write(chunk)
            written += len(chunk)
            rows += n
    return rows


#: the throughput goals, as ratios measured in the same run (absolute MB/s depend on the machine):
#: Avro comparable to JSON lines (within 1.5x of its rows/s) and ahead of fastavro's own reader, Parquet
#: ahead of pyarrow's single-process reads, conversion within 2x of pyarrow's own CSV -> Parquet
GOALS = (
    ("avro rows/s >= 0.67x jsonl rows/s", lambda r, c: r["avro (dicts)"] / r["jsonl (dicts)"], 0.67),
    ("avro rows/s >= 1.0x fastavro.reader", lambda r, c: r["avro (dicts)"] / r["fastavro reader (1 process)"], 1.0),
    ("parquet arrow tables >= 1.0x pyarrow read_table", lambda r, c: r["parquet (arrow tables)"]
     / r["pyarrow read_table"], 1.0),
    ("parquet dicts >= 1.0x pyarrow to_pylist", lambda r, c: r["parquet (dicts)"]
     / r["pyarrow read_table+to_pylist"], 1.0),
    ("convert CSV->Parquet time <= 2x pyarrow's", lambda r, c: 2.0 / c, 1.0),
)


def goals(rate: dict, convert_ratio: float) -> list:
    """One row per goal: the measured ratio and whether it held."""
    out = []
    for name, measure, want in GOALS:
        got = measure(rate, convert_ratio)
        shown = f"{convert_ratio:.2f}x" if name.startswith("convert") else f"{got:.2f}x"
        out.append((name, shown, "yes" if got >= want else "NO"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=150, help="size of the CSV copy of the table")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default=None, help="keep the generated files here")
    args = ap.parse_args()

    import fastavro
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    import mapred
    from mapred.runtime.convert import convert

    with scratch("mapred-formats-", args.dir) as d:
        src = os.path.join(d, "table.csv")
        cluster = mapred.LocalCluster(args.workers)
        try:
            if not os.path.exists(src):
                t0 = time.perf_counter()
                n = make_table(src, args.mb)
                print(f"wrote {n} rows, {os.path.getsize(src) / 1e6:.0f} MB of CSV in {time.perf_counter() - t0:.1f}s",
                      file=sys.stderr)
            copies = {"csv": src}
            for fmt in ("parquet", "jsonl", "avro", "seq"):
                out = os.path.join(d, fmt)
                if not os.path.exists(out):
                    t0 = time.perf_counter()
                    convert([src], out, fmt, cluster=cluster, overwrite=True)
                    print(f"converted to {fmt} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
                copies[fmt] = out
            rows = []

            def size_of(path):
                if os.path.isfile(path):
                    return os.path.getsize(path)
                return sum(os.path.getsize(os.path.join(path, p)) for p in os.listdir(path) if p.startswith("part-"))

            def job_read(label, path, options=None):
                job = mapred.Job(map_batch=count_only, input_options=options or {}, output_format="text",
                                 name=f"read-{label}")
                t0 = time.perf_counter()
                result = job.run([path], None, cluster=cluster)
                dt = time.perf_counter() - t0
                n = result.counters["map"]["input_records"]
                mb = size_of(path) / 1e6
                rows.append((label, f"{mb:.0f}", f"{dt:.2f}", f"{mb / dt:.1f}", f"{n / dt / 1e6:.2f}"))
                return dt

            for label, path, opts in (("csv (dicts)", copies["csv"], None),
                                      ("jsonl (dicts)", copies["jsonl"], None),
                                      ("parquet (dicts)", copies["parquet"], None),
                                      ("parquet (arrow tables)", copies["parquet"], {"record": "arrow"}),
                                      ("avro (dicts)", copies["avro"], None),
                                      ("seq (pairs)", copies["seq"], None)):
                job_read(label, path, opts)
            files = sorted(os.path.join(copies["parquet"], p) for p in os.listdir(copies["parquet"])
                           if p.endswith(".parquet"))
            avro_files = sorted(os.path.join(copies["avro"], p) for p in os.listdir(copies["avro"])
                                if p.endswith(".avro"))

            def fastavro_read(path):
                with open(path, "rb") as f:
                    return list(fastavro.reader(f))

            for label, fn, copy in (
                    ("pyarrow read_table", lambda: [pq.read_table(p) for p in files], "parquet"),
                    ("pyarrow read_table+to_pylist", lambda: [pq.read_table(p).to_pylist() for p in files], "parquet"),
                    ("fastavro reader (1 process)", lambda: [fastavro_read(p) for p in avro_files], "avro")):
                t0 = time.perf_counter()
                out = fn()
                dt = time.perf_counter() - t0
                n = sum(len(t) for t in out)
                mb = size_of(copies[copy]) / 1e6
                rows.append((label, f"{mb:.0f}", f"{dt:.2f}", f"{mb / dt:.1f}", f"{n / dt / 1e6:.2f}"))
            print(table(rows, ("read", "MB", "s", "MB/s", "Mrows/s")))

            t0 = time.perf_counter()
            convert([src], os.path.join(d, "conv"), "parquet", cluster=cluster, overwrite=True)
            ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            pq.write_table(pacsv.read_csv(src), os.path.join(d, "pyarrow.parquet"))
            theirs = time.perf_counter() - t0
            mb = os.path.getsize(src) / 1e6
            print()
            print(table([("mapred convert --to parquet", f"{ours:.2f}", f"{mb / ours:.1f}"),
                         ("pyarrow read_csv + write_table", f"{theirs:.2f}", f"{mb / theirs:.1f}")],
                        ("CSV -> Parquet", "s", "MB/s")))
            print(f"\nratio mapred/pyarrow: {ours / theirs:.1f}x the time ({args.workers} workers, "
                  f"{os.cpu_count()} cores)")
            rate = {r[0]: float(r[4]) for r in rows}
            print()
            print(table(goals(rate, ours / theirs), ("goal", "measured", "held")))
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
