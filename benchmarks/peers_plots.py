"""The pictures of ``benchmarks/peers.py --plot``: throughput, scaling, and data rates over time.

* ``peers-throughput.png``: MB/s of input per system, grouped by job.
* ``peers-scaling.png``: the per-record word count's MB/s with 1, 2, 4 workers
  (``--scaling``), mapred (generator combiner and fold) beside the hand-written pool;
  worker counts past the machine's cores are shaded and labelled oversubscribed.
* ``peers-rates.png``: after Figure 3 of the MapReduce paper — a cluster job's
  input rate (map input bytes), shuffle rate (map output bytes committed for the
  reducers) and output rate (reduce output records) over time, for a normal run,
  a run with a straggler (one worker stopped for a while) with speculation off,
  and a run where a worker is killed.  The series are the job's counters as the
  master reports them (committed tasks plus running attempts' live counters from
  heartbeats), sampled every 0.2 s by the client.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import mapred  # noqa: E402
import mapred.combiners  # noqa: E402


STRAGGLE_S = 3.0       # how long the straggler run's worker is stopped


def write_all(rows: list[dict], args) -> list[str]:
    """Every picture into ``args.plot_dir``; returns the paths written."""
    import cloudpickle
    import peers
    cloudpickle.register_pickle_by_value(peers)     # cluster workers cannot import the benchmark
    os.makedirs(args.plot_dir, exist_ok=True)
    wanted = {p for p in str(args.plot).split(",") if p} if isinstance(args.plot, str) else {"throughput", "scaling",
                                                                                             "rates"}
    written = []
    if "throughput" in wanted:
        written.append(throughput(rows, os.path.join(args.plot_dir, "peers-throughput.png")))
    if "scaling" in wanted:
        counts = [int(w) for w in str(args.scaling).split(",") if w]
        written.append(scaling(args, counts, os.path.join(args.plot_dir, "peers-scaling.png")))
    if "rates" in wanted:
        written.append(rates(args, os.path.join(args.plot_dir, "peers-rates.png")))
    for path in written:
        print(f"wrote {path}")
    return written


def throughput(rows: list[dict], path: str) -> str:
    jobs = [j for j in dict.fromkeys(r["job"] for r in rows) if any(r["mb"] for r in rows if r["job"] == j)]
    systems = list(dict.fromkeys(r["system"] for r in rows if r["job"] in jobs))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(jobs)), 4))
    width = 0.8 / max(1, len(systems))
    for i, system in enumerate(systems):
        xs, ys = [], []
        for j, job in enumerate(jobs):
            r = next((r for r in rows if r["job"] == job and r["system"] == system), None)
            if r is not None:
                xs.append(j + i * width)
                ys.append(r["mb"] / r["wall"])
        ax.bar(xs, ys, width, label=system)
    ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(jobs))], jobs)
    ax.set_yscale("log")          # GNU tools run 10-100x the Python systems: a log scale keeps both readable
    ax.set_ylabel("input MB/s (wall, log scale)")
    ax.set_title("throughput by system and job")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


SCALING_FORMS = {"pool": "hand-written pool", "mapred": "mapred, generator combiner (README)",
                 "mapred-fold": "mapred, combiners.sum"}


def scaling(args, counts: list[int], path: str) -> str:
    """MB/s of the per-record word count with each worker count; past the machine's cores it is marked.

    On a machine with fewer cores than workers the extra workers only share
    the cores (and the driver's): the plot shades that part and says so,
    rather than letting it pass for scaling.
    """
    import peers
    series: dict = {}
    cores = os.cpu_count() or 1
    with peers.scratch("mapred-peers-scale-", args.dir) as d:
        paths = peers.make_data(d, args.mb, args.tiny)
        mb = os.path.getsize(paths["text"]) / 1e6
        for w in counts:
            ctx = peers.Context(d, paths, w, args.mb)
            try:
                best: dict = {}
                for _ in range(2):         # alternating, the best of two
                    for name, fn in (("pool", peers.pool_wc_record), ("mapred", peers.mapred_wc_record),
                                     ("mapred-fold", peers.mapred_wc_fold)):
                        _, wall, _, _ = peers.Measured().run(lambda: fn(ctx))
                        best[name] = min(best.get(name, wall), wall)
                for name, wall in best.items():
                    series.setdefault(name, []).append(mb / wall)
            finally:
                ctx.close()
    print(f"scaling: per-record word count, {mb:.0f} MB, {cores} cores (MB/s, best of 2)")
    for name, ys in series.items():
        cells = "  ".join(f"{w} workers{' (oversubscribed)' if w > cores else ''}: {y:.1f}"
                          for w, y in zip(counts, ys))
        print(f"  {SCALING_FORMS.get(name, name)}: {cells}")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, ys in series.items():
        ax.plot(counts, ys, marker="o", label=SCALING_FORMS.get(name, name))
    over = [w for w in counts if w > cores]
    if over:
        ax.axvspan(cores + 0.5 if cores + 0.5 < max(counts) else cores, max(counts) + 0.3, color="0.9", zorder=0)
        ax.text(max(counts), ax.get_ylim()[1], f"oversubscribed:\nmore workers\nthan {cores} cores",
                ha="right", va="top", fontsize=7, color="0.35")
    ax.set_xticks(counts)
    ax.set_xlabel("workers")
    ax.set_ylabel("MB/s (wall)")
    ax.set_title(f"per-record word count, {mb:.0f} MB, on {cores} cores", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rates(args, path: str) -> str:
    """Three cluster runs of the per-record word count, their counters sampled over time."""
    import peers
    from mapred.runtime.procs import Cluster
    runs = {}
    with peers.scratch("mapred-peers-rates-", args.dir) as d:
        paths = peers.make_data(d, args.mb, args.tiny)
        job = mapred.Job(mapper=peers.words_of, combiner=mapred.combiners.sum, reducer=mapred.combiners.sum,
                         num_reducers=2, split_size=max(64 << 10, os.path.getsize(paths["text"]) // 12))
        for label, speculation, fault in (("normal", True, None), ("straggler, no speculation", False, "stop"),
                                          ("a worker killed", True, "kill")):
            # the straggler is stopped for STRAGGLE_S, inside its dead timeout: slow, not dead
            with Cluster(os.path.join(d, f"c-{fault}"), workers=2, slots=1, speculation=speculation,
                         dead_timeout=2.0 if fault != "stop" else 4 * STRAGGLE_S, heartbeat=0.25) as cluster:
                runs[label] = _sampled_run(cluster, job, paths["text"], os.path.join(d, f"out-{fault}"), fault)
    fig, axes = plt.subplots(3, len(runs), figsize=(4 * len(runs), 6), sharex="col", squeeze=False)
    for col, (label, samples) in enumerate(runs.items()):
        t = [s[0] for s in samples]
        for row, (idx, name, scale) in enumerate(((1, "input MB/s", 1e6), (2, "shuffle MB/s", 1e6),
                                                  (3, "output records/s", 1))):
            ax = axes[row][col]
            ax.plot(t[1:], _rate(samples, idx, scale), drawstyle="steps-post")
            ax.set_ylabel(name, fontsize=8)
            if row == 0:
                ax.set_title(label, fontsize=9)
        axes[2][col].set_xlabel("seconds since submission")
    fig.suptitle("data rates over time (after Dean & Ghemawat, Fig. 3)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rate(samples, idx: int, scale: float) -> list[float]:
    out = []
    for a, b in zip(samples, samples[1:]):
        dt = max(b[0] - a[0], 1e-6)
        out.append(max(0.0, b[idx] - a[idx]) / scale / dt)
    return out


def _sampled_run(cluster, job, path: str, out: str, fault) -> list[tuple]:
    """``(t, map input bytes, map output bytes, reduce output records)`` every 0.2 s until the job ends."""
    client = cluster.client()
    handle = client.submit(job, [path], out, overwrite=True)
    started = time.monotonic()
    samples = [(0.0, 0, 0, 0)]
    fault_at = None
    while True:
        st = client.status(handle.job_id, detail=True)
        now = time.monotonic() - started
        samples.append((now, *_totals(st)))
        if fault and fault_at is None and st.get("progress", {}).get("maps_done", 0) >= 2:
            fault_at = now
            _inject(cluster, fault)
        if st.get("state") in ("SUCCEEDED", "FAILED", "KILLED"):
            break
        time.sleep(0.2)
    handle.wait()
    return samples


def _inject(cluster, fault: str) -> None:
    if fault == "kill":
        cluster.kill_worker(0)
    elif fault == "stop":
        cluster.signal_worker(0, signal.SIGSTOP)
        threading.Timer(STRAGGLE_S, cluster.signal_worker, (0, signal.SIGCONT)).start()


def _totals(st: dict) -> tuple[int, int, int]:
    """Map input bytes, map output bytes (committed) and reduce output records, live attempts included."""
    inp = shuf = outp = 0
    for task in st.get("tasks", []):
        counters = task.get("counters") or {}
        if not counters:                       # not committed yet: the running attempts' live counters
            live = [a.get("counters") or {} for a in task.get("attempts", []) if a.get("state") == "RUNNING"]
            counters = max(live, key=lambda c: c.get("map", {}).get("input_bytes", 0), default={})
        inp += counters.get("map", {}).get("input_bytes", 0)
        shuf += counters.get("map", {}).get("output_bytes", 0) if task.get("counters") else 0
        outp += counters.get("reduce", {}).get("output_records", 0)
    return inp, shuf, outp
