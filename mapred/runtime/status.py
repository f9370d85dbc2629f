"""Job status as plain dicts, read from the scheduling core, for ``mapred job status`` and clients.

Kept apart from the master loop so the shape of a status report is one small
thing to read: a summary (state, progress, counters, error) and, on request,
every task with every attempt — where it ran, how it ended, its error with
the failing record and traceback.  Plain types only: it travels in msgpack.
"""
from __future__ import annotations

from mapred.core.scheduler import MasterState


def job_summary(core: MasterState, rec) -> dict:
    """One line's worth: id, name, state, progress, timing."""
    plan = rec.plan
    job = core.job(plan.job_id)
    progress = core.progress(plan.job_id) if job is not None else {"state": "SUBMITTED"}
    return {"job_id": plan.job_id, "name": plan.job.name, "state": progress["state"],
            "progress": progress, "output": plan.output, "submitted": rec.submitted,
            "finished": rec.finished, "submitter": getattr(rec, "submitter", ""),
            "reducers": plan.job.num_reducers, "output_format": plan.job.output_format}


def job_status(core: MasterState, rec, detail: bool = False, workers: dict | None = None) -> dict:
    """The summary plus counters and error; with ``detail`` every task and attempt."""
    out = job_summary(core, rec)
    job = core.job(rec.plan.job_id)
    if job is None:
        return out
    out["counters"] = core.job_counters(job.id)
    out["error"] = _plain(job.error)
    if detail:
        out["tasks"] = [_task(core, t, workers or {}) for t in job.all_tasks()]
    return out


def _task(core: MasterState, task, workers: dict) -> dict:
    return {"task": str(task.id), "state": task.state.value,
            "committed": str(task.committed) if task.committed is not None else "",
            "hosts": list(task.hosts), "counters": task.counters if task.committed is not None else {},
            "attempts": [_attempt(a, workers) for a in task.attempts.values()]}


def _attempt(a, workers: dict) -> dict:
    w = workers.get(a.worker_id)
    took = (a.finished - a.started) if a.finished is not None else None
    return {"attempt": str(a.id), "worker": a.worker_id, "host": w.host if w else "",
            "state": a.state.value, "speculative": a.speculative, "seconds": took, "progress": a.progress,
            "counters": a.counters if a.finished is None else {}, "error": _plain(a.error)}


def _plain(d: dict) -> dict:
    """Error reports as msgpack-safe values (reprs of anything exotic)."""
    out = {}
    for k, v in (d or {}).items():
        out[str(k)] = v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
    return out


def render(st: dict) -> str:
    """A status dict as text for a terminal: header, counters, error with traceback, then tasks."""
    p = st.get("progress", {})
    lines = [f"job {st['job_id']} ({st['name']}): {st['state']}",
             f"  maps {p.get('maps_done', 0)}/{p.get('maps', 0)}, "
             f"reduces {p.get('reduces_done', 0)}/{p.get('reduces', 0)}, output {st.get('output', '')}"]
    err = st.get("error") or {}
    if err:
        lines.append(f"  error: {err.get('type', 'Error')}: {err.get('message', '')}")
        for key in ("task", "attempt", "worker", "split", "offset", "key", "reason"):
            if err.get(key) not in (None, ""):
                lines.append(f"    {key}: {err[key]}")
        if err.get("traceback"):
            lines.append("  traceback:")
            lines.extend("    " + t for t in str(err["traceback"]).rstrip().splitlines())
    for group, names in sorted((st.get("counters") or {}).items()):
        lines.append(f"  counters {group}: " + ", ".join(f"{k}={v}" for k, v in sorted(names.items())))
    for task in st.get("tasks", []):
        lines.append(f"  {task['task']} {task['state']}")
        for a in task["attempts"]:
            took = f" {a['seconds']:.2f}s" if a.get("seconds") is not None else ""
            if a["state"] == "RUNNING" and a.get("progress"):
                took = f" {100 * a['progress']:.0f}%"
            spec = " speculative" if a.get("speculative") else ""
            lines.append(f"    {a['attempt']} {a['state']} on {a['worker']} ({a['host']}){took}{spec}")
            if a["state"] == "RUNNING" and a.get("counters"):
                live = ", ".join(f"{g}.{k}={v}" for g, names in sorted(a["counters"].items())
                                 for k, v in sorted(names.items()))
                lines.append(f"      so far: {live}")
            if a.get("error", {}).get("message"):
                e = a["error"]
                lines.append(f"      {e.get('type', 'Error')}: {e['message']}"
                             + (f" at record offset {e['offset']}" if e.get("offset") is not None else ""))
    return "\n".join(lines)
