"""Where a job spent its time: the per-stage breakdown of ``mapred run --profile`` and ``mapred job profile``.

Every attempt measures its stages (``task.attempt.stage_counters``) and
reports them as the ``time_ms`` counter group beside its other counters; the
core keeps the committed attempt's counters per task.  This module turns
those into a table: one row per task, one column per stage, and a sum per
phase — so a user can see whether a job's time goes to reading, to their own
mapper, to the engine's collect, to spilling or to writing.
"""
from __future__ import annotations

from typing import Iterable

STAGE_GROUP = "time_ms"
MAP_STAGES = ("read", "map", "collect", "combine", "sort", "spill", "merge", "write", "other")
REDUCE_STAGES = ("fetch", "merge", "reduce", "write", "other")
SHOWN = {"map": ("read", "map", "collect"), "reduce": ("merge", "reduce", "write")}   # columns even at 0 ms
STAGE_HELP = {
    "read": "reading and decoding input blocks",
    "map": "the user's mapper (per-record mappers: sampled, 1 record in 1,024)",
    "collect": "the engine's map loop: driving the mapper, buffering or folding pairs",
    "combine": "running a (non-folding) combiner over buffered values",
    "sort": "partitioning and sorting a spill's keys",
    "spill": "encoding and writing sorted runs",
    "merge": "merging spills (maps) or grouping fetched runs (reduces)",
    "fetch": "fetching map outputs",
    "reduce": "the user's reducer (sampled, 1 key in 1,024)",
    "write": "writing output (reduces and map-only maps)",
    "other": "the rest: starting the attempt, opening and closing its files",
}


def task_stage_times(tasks: Iterable[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """``(task id, {stage: ms})`` for each task whose counters carry a profile.

    ``other`` is the task's total less its measured stages: setting up the
    attempt, opening its output, cleaning up (the stages cover the rest).
    """
    rows = []
    for task, counters in tasks:
        stages = dict((counters or {}).get(STAGE_GROUP) or {})
        if not stages:
            continue
        measured = sum(ms for st, ms in stages.items() if st != "total")
        stages["other"] = max(0, stages.get("total", 0) - measured)
        rows.append((task, stages))
    return rows


def tasks_of_status(status: dict) -> list[tuple[str, dict]]:
    """``(task id, counters)`` of every task in a detailed job status (``mapred job status --json``)."""
    return [(t["task"], t.get("counters") or {}) for t in status.get("tasks", [])]


def render(rows: list[tuple[str, dict]]) -> str:
    """The per-task table (milliseconds) with a summed row and each stage's share per phase."""
    if not rows:
        return "no profile: the job's tasks reported no stage times"
    lines = []
    for kind, stages in (("map", MAP_STAGES), ("reduce", REDUCE_STAGES)):
        mine = [(t, s) for t, s in rows if _kind(t) == kind]
        if not mine:
            continue
        used = [st for st in stages if st in SHOWN[kind] or any(s.get(st) for _, s in mine)]
        header = ["task", *used, "total"]
        body = [[t, *(str(s.get(st, 0)) for st in used), str(s.get("total", 0))] for t, s in mine]
        sums = {st: sum(s.get(st, 0) for _, s in mine) for st in [*used, "total"]}
        body.append([f"all {len(mine)} {kind}s", *(str(sums[st]) for st in used), str(sums["total"])])
        whole = sum(sums[st] for st in used) or 1
        body.append(["share", *(f"{100 * sums[st] / whole:.0f}%" for st in used), ""])
        lines.append(f"{kind} stages (ms):")
        lines.extend(_table(header, body))
        lines.append("")
    lines.append("stages:")
    lines.extend(f"  {k:<8} {v}" for k, v in STAGE_HELP.items())
    return "\n".join(lines)


def summed(rows: list[tuple[str, dict]]) -> dict:
    """``{"map": {stage: ms}, "reduce": {stage: ms}}`` summed over the tasks."""
    out: dict = {}
    for task, stages in rows:
        phase = out.setdefault(_kind(task), {})
        for st, ms in stages.items():
            phase[st] = phase.get(st, 0) + ms
    return out


def _kind(task: str) -> str:
    """``map`` or ``reduce`` from a task id (``JOB-m-00003`` / ``JOB-r-00001``)."""
    return "reduce" if "-r-" in task else "map"


def _table(header: list, body: list) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:>{w}}}" if i else f"{{:<{w}}}" for i, w in enumerate(widths))
    return ["  " + fmt.format(*header)] + ["  " + fmt.format(*r) for r in body]
