"""Terasort: sort 100-byte records by their 10-byte key; the concatenated parts are totally ordered.

    python examples/terasort.py gen 1000000 data/tera     # 1 M records (100 MB), seeded
    mapred run examples/terasort.py data/tera -o out/sorted -r 4
    python examples/terasort.py check data/tera out/sorted

A record is a line of exactly 100 bytes: a 10-character key, a space, an
88-character payload, a newline.  The map reads each split as raw bytes and
emits all its records as ``ArrayPairs`` (keys as ``S10``, records as
``S100``); a sampled ``TotalOrderPartitioner`` sends key ranges to reducers
in order; each reducer gets its range sorted and writes it back verbatim.
No Python call per record anywhere.
"""
import hashlib
import os
import sys

import numpy as np

import mapred
from mapred.shuffle.partition import TotalOrderPartitioner

RECORD = 100
KEY = 10


def records_of(block: bytes) -> np.ndarray:
    if len(block) % RECORD:
        raise ValueError(f"input block of {len(block)} bytes is not a whole number of {RECORD}-byte records")
    return np.frombuffer(block, dtype=f"S{RECORD}")


def map_records(block):
    recs = records_of(block)
    keys = recs.view(np.uint8).reshape(-1, RECORD)[:, :KEY].copy().view(f"S{KEY}").ravel()
    yield mapred.ArrayPairs(keys, recs)


def write_sorted(keys, records):
    yield mapred.ArrayPairs(keys, records)


def record_key(line: bytes) -> bytes:
    return line[:KEY]


# a map's output is as big as its split: splits no larger than the sort buffer sort in one run, no spills
job = mapred.Job(map_batch=map_records, reduce_batch=write_sorted, input_mode="bytes", output_format="raw",
                 partitioner=TotalOrderPartitioner(record_key), num_reducers=4, split_size=64 << 20,
                 name="terasort")


_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8)


def generate(n: int, path: str, seed: int = 0, files: int = 4, chunk: int = 1_000_000) -> None:
    """``n`` seeded random records in ``files`` files under ``path``."""
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_file = -(-n // files)
    for i in range(files):
        count = max(0, min(per_file, n - i * per_file))
        with open(os.path.join(path, f"part-{i:03d}.dat"), "wb") as f:
            for start in range(0, count, chunk):
                m = min(chunk, count - start)
                rows = _ALPHABET[rng.integers(0, 64, size=(m, RECORD), dtype=np.uint8)]
                rows[:, KEY] = ord(" ")
                rows[:, -1] = ord("\n")
                f.write(rows.tobytes())


def check(input_dir: str, output_dir: str) -> None:
    """Output is totally ordered and a permutation of the input (same count, same multiset hash)."""
    def digest_and_count(paths):
        total, h = 0, np.zeros(4, dtype=np.uint64)
        for p in paths:
            recs = records_of(open(p, "rb").read())
            total += len(recs)
            words = np.frombuffer(hashlib.md5(b"x").digest(), dtype=np.uint64)  # fixed salt
            rows = recs.view(np.uint8).reshape(-1, RECORD).astype(np.uint64)
            with np.errstate(over="ignore"):
                h += np.array([(rows[:, j::4] * words[j % 2]).sum() for j in range(4)], dtype=np.uint64)
        return total, h
    ins = sorted(os.path.join(input_dir, f) for f in os.listdir(input_dir) if not f.startswith(("_", ".")))
    outs = sorted(os.path.join(output_dir, f) for f in os.listdir(output_dir) if f.startswith("part-"))
    previous = b""
    for p in outs:
        keys = records_of(open(p, "rb").read()).view(np.uint8).reshape(-1, RECORD)[:, :KEY].copy().view(f"S{KEY}").ravel()
        if len(keys):
            if (keys[1:] < keys[:-1]).any() or keys[0] < previous:
                raise SystemExit(f"not sorted: {p}")
            previous = keys[-1]
    (n_in, h_in), (n_out, h_out) = digest_and_count(ins), digest_and_count(outs)
    if n_in != n_out or not (h_in == h_out).all():
        raise SystemExit(f"output is not a permutation of the input ({n_out} vs {n_in} records)")
    print(f"ok: {n_out} records totally ordered across {len(outs)} parts")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "gen":
        generate(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
