"""Jobs and inputs for the cluster tests.  Shipped by value, so workers need not import this file."""
import os
import random
import time

import cloudpickle

import mapred
from mapred.shuffle.partition import RangePartitioner

cloudpickle.register_pickle_by_value(__import__(__name__))

FAST = {"dead_timeout": 2.0, "heartbeat": 0.25}


def write_text(path, lines: int, seed: int = 0, vocab: int = 200) -> str:
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(lines):
            f.write(" ".join(f"w{rng.randrange(vocab)}" for _ in range(rng.randrange(1, 8))) + "\n")
    return str(path)


def write_tera(path, rows: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(rows):
            key = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))
            f.write(f"{key} row{i:07d}\n")
    return str(path)


def wordcount(reducers: int = 3, map_sleep: float = 0.0, reduce_sleep: float = 0.0, split: int = 0):
    def mapper(_offset, line):
        for w in line.split():
            yield w, 1

    def add(word, counts):
        yield word, sum(counts)

    def slow_map():
        time.sleep(map_sleep)

    def slow_reduce():
        time.sleep(reduce_sleep)

    job = mapred.Job(mapper, combiner=add, reducer=add, num_reducers=reducers, name="wordcount",
                     mapper_init=slow_map if map_sleep else None,
                     reducer_init=slow_reduce if reduce_sleep else None)
    if split:
        job.split_size = split
    return job


def terasort(path: str, reducers: int = 3, split: int = 0):
    with open(path) as f:
        sample = [line.split(" ", 1)[0] for line in f][::50]

    def mapper(_offset, line):
        key, _, value = line.partition(" ")
        yield key, value

    def identity(key, values):
        for v in values:
            yield key, v

    job = mapred.Job(mapper, reducer=identity, num_reducers=reducers, name="terasort",
                     partitioner=RangePartitioner.from_sample(sample, reducers))
    if split:
        job.split_size = split
    return job


def always_raises():
    def mapper(offset, line):
        if "w" in line:
            raise ValueError(f"cannot parse {line!r}")
        yield line, 1
    return mapred.Job(mapper, reducer=lambda k, vs: [(k, sum(vs))], name="raiser")


def part_texts(out: str) -> list:
    lines = []
    for name in sorted(os.listdir(out)):
        if name.startswith("part-"):
            with open(os.path.join(out, name)) as f:
                lines.extend(f.read().splitlines())
    return lines


def wait_status(client, job_id, predicate, timeout: float = 30.0):
    """Poll a job's detailed status until ``predicate(status)`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = client.status(job_id, detail=True)
        if predicate(st):
            return st
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached the awaited state; last: {st['state']} {st['progress']}")


def running_attempts(st: dict, kind: str) -> list:
    """``[(attempt, worker_id)]`` of running attempts of ``kind`` ("m" or "r")."""
    out = []
    for task in st.get("tasks", []):
        if f"-{kind}-" in task["task"]:
            out += [(a["attempt"], a["worker"]) for a in task["attempts"] if a["state"] == "RUNNING"]
    return out


def worker_index(cluster, worker_id: str) -> int:
    pid = next(w["pid"] for w in cluster.client().workers(alive_only=False) if w["worker_id"] == worker_id)
    return next(i for i, p in enumerate(cluster.worker_procs) if p.pid == pid)
