"""The scheduling core fed events by hand: whole action lists compared, invariants validated."""
from mapred.core import events as ev
from mapred.core.scheduler import MasterState
from mapred.types import AttemptId, JobState, TaskId, TaskKind


def aid(job, kind, i, n=0):
    return AttemptId(TaskId(job, kind, i), n)


def test_maps_then_reduces_then_success_with_commits():
    core = MasterState()
    core.handle(ev.WorkerJoined("w1", "h1", 2, 0.0))
    acts = core.handle(ev.JobSubmitted("j", 2, 1, (("h1",), ("h2",)), now=0.0))
    assigns = [a for a in acts if isinstance(a, ev.AssignAttempt)]
    assert [a.attempt for a in assigns] == [aid("j", TaskKind.MAP, 0), aid("j", TaskKind.MAP, 1)]
    assert assigns[0].locality == "node"
    acts = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 0), "w1", {"path": "m0"}, now=1.0))
    assert acts == [ev.CommitAttempt(aid("j", TaskKind.MAP, 0), "w1", {"path": "m0"})]
    acts = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 1), "w1", {"path": "m1"}, now=1.0))
    reduce_assign = acts[-1]
    assert isinstance(reduce_assign, ev.AssignAttempt)
    assert reduce_assign.map_outputs == ((0, "w1", {"path": "m0"}), (1, "w1", {"path": "m1"}))
    acts = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.REDUCE, 0), "w1", {"files": ["p"]}, now=2.0))
    assert isinstance(acts[-1], ev.JobFinished) and acts[-1].state == JobState.SUCCEEDED
    core.validate()


def test_failure_is_retried_then_fails_the_job_naming_the_task():
    core = MasterState()
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    core.handle(ev.JobSubmitted("j", 1, 0, max_attempts=2, now=0.0))
    acts = core.handle(ev.AttemptFailed(aid("j", TaskKind.MAP, 0), "w1", {"message": "boom"}, now=1.0))
    assert any(isinstance(a, ev.AssignAttempt) and a.attempt.n == 1 for a in acts)
    acts = core.handle(ev.AttemptFailed(aid("j", TaskKind.MAP, 0, 1), "w1", {"message": "boom"}, now=2.0))
    done = acts[-1]
    assert isinstance(done, ev.JobFinished) and done.state == JobState.FAILED
    assert done.error["task"] == "j-m-00000" and done.error["message"] == "boom"
    core.validate()


def test_stale_report_from_superseded_attempt_is_ignored():
    core = MasterState()
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    core.handle(ev.JobSubmitted("j", 1, 0, now=0.0))
    core.handle(ev.WorkerLost("w1"))
    core.handle(ev.WorkerJoined("w2", "h", 1, 1.0))
    acts = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 0), "w1", {"files": []}, now=2.0))
    assert acts == [ev.DiscardAttempt(aid("j", TaskKind.MAP, 0), "w1")]   # its output is cleaned, never committed
    assert core.jobs["j"].maps[0].committed is None
    core.validate()


def test_lost_worker_map_outputs_rerun_when_reduces_need_them():
    core = MasterState(dead_timeout=5)
    core.handle(ev.WorkerJoined("w1", "h1", 1, 0.0))
    core.handle(ev.WorkerJoined("w2", "h2", 1, 0.0))
    core.handle(ev.JobSubmitted("j", 2, 1, now=0.0))
    core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 0), "w1", {"path": "a"}, now=1.0))
    core.handle(ev.WorkerHeartbeat("w2", 5.0))
    acts = core.handle(ev.Tick(7.0))     # w1 silent for 7 s > 5 s
    map0 = [a for a in acts if isinstance(a, ev.AssignAttempt) and a.attempt.task.index == 0]
    assert core.jobs["j"].counters["rerun_maps"] == 1
    assert not any(a.worker_id == "w1" for a in map0)
    core.validate()


def test_speculative_backup_commits_once():
    core = MasterState(speculation_min_seconds=0.1)
    for w in ("w1", "w2", "w3"):
        core.handle(ev.WorkerJoined(w, "h", 1, 0.0))
    core.handle(ev.JobSubmitted("j", 3, 0, now=0.0))
    core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 0), "w1", {"files": ["a"]}, now=1.0))
    core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 1), "w2", {"files": ["b"]}, now=1.0))
    acts = core.handle(ev.Tick(10.0))
    backup = [a for a in acts if isinstance(a, ev.AssignAttempt)]
    assert len(backup) == 1 and backup[0].speculative and backup[0].attempt.n == 1
    acts = core.handle(ev.AttemptSucceeded(backup[0].attempt, backup[0].worker_id, {"files": ["c"]}, now=11.0))
    assert sum(isinstance(a, ev.CommitAttempt) for a in acts) == 1
    assert any(isinstance(a, ev.KillAttempt) and a.attempt.n == 0 for a in acts)
    late = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 2), "w3", {"files": ["d"]}, now=12.0))
    assert not any(isinstance(a, ev.CommitAttempt) for a in late)
    core.validate()


def test_cached_split_waits_for_its_worker_even_when_another_is_node_local():
    core = MasterState(locality_wait=3.0, speculation=False)
    core.handle(ev.WorkerJoined("x", "h", 1, 0.0))
    core.handle(ev.WorkerJoined("y", "h", 1, 0.0))
    core.handle(ev.JobSubmitted("j1", 2, 0, (("h",), ("h",)), ("k0", "k1"), now=0.0))
    cached_on = {}
    for task in core.jobs["j1"].maps:
        a = task.running()[0]
        cached_on[a.worker_id] = task.id.index
        core.handle(ev.AttemptSucceeded(a.id, a.worker_id, {"files": []}, cached=(task.cache_key,), now=1.0))
    core.handle(ev.JobSubmitted("j0", 1, 0, now=1.5))           # occupies one of the two workers
    busy = core.jobs["j0"].maps[0].running()[0].worker_id
    free = "y" if busy == "x" else "x"
    acts = core.handle(ev.JobSubmitted("j2", 2, 0, (("h",), ("h",)), ("k0", "k1"), now=2.0))
    started = [a for a in acts if isinstance(a, ev.AssignAttempt)]
    assert [(a.attempt.task.index, a.worker_id, a.locality) for a in started] == [(cached_on[free], free, "cache")]
    acts = core.handle(ev.AttemptSucceeded(started[0].attempt, free, {"files": []}, now=2.5))
    assert not any(isinstance(a, ev.AssignAttempt) for a in acts)   # the other split waits for its busy worker
    acts = core.handle(ev.Tick(5.1))                                  # ...but not forever
    late = [a for a in acts if isinstance(a, ev.AssignAttempt)]
    assert [(a.attempt.task.index, a.worker_id, a.locality) for a in late] == [(cached_on[busy], free, "node")]
    core.validate()
