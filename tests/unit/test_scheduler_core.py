"""The scheduling core fed events by hand: whole action lists compared, invariants validated."""
from mapred.core import actions as act
from mapred.core import events as ev
from mapred.core.scheduler import MasterState
from mapred.types import AttemptId, JobState, TaskId, TaskKind


def aid(job, kind, i, n=0):
    return AttemptId(TaskId(job, kind, i), n)


def test_maps_then_reduces_then_success_with_commits():
    core = MasterState()
    core.handle(ev.WorkerJoined("w1", "h1", 2, 0.0))
    acts = core.handle(ev.JobSubmitted("j", 2, 1, (("h1",), ("h2",)), now=0.0))
    assigns = [a for a in acts if isinstance(a, act.AssignAttempt)]
    assert [a.attempt for a in assigns] == [aid("j", TaskKind.MAP, 0), aid("j", TaskKind.MAP, 1)]
    assert assigns[0].locality == "node"
    acts = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 0), "w1", {"path": "m0"}, now=1.0))
    assert acts == [act.CommitAttempt(aid("j", TaskKind.MAP, 0), "w1", {"path": "m0"})]
    acts = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 1), "w1", {"path": "m1"}, now=1.0))
    reduce_assign = acts[-1]
    assert isinstance(reduce_assign, act.AssignAttempt)
    assert reduce_assign.map_outputs == ((0, "w1", {"path": "m0"}), (1, "w1", {"path": "m1"}))
    acts = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.REDUCE, 0), "w1", {"files": ["p"]}, now=2.0))
    assert acts == [act.CommitAttempt(aid("j", TaskKind.REDUCE, 0), "w1", {"files": ["p"]})]
    assert core.progress("j")["state"] == "COMMITTING"      # nothing finished before the commit is done
    acts = core.handle(ev.CommitDone(aid("j", TaskKind.REDUCE, 0)))
    assert [type(a) for a in acts] == [act.CommitJob]
    acts = core.handle(ev.CommitDone(job_id="j"))
    assert isinstance(acts[-1], act.JobFinished) and acts[-1].state == JobState.SUCCEEDED
    core.validate()


def test_failure_is_retried_then_fails_the_job_naming_the_task():
    core = MasterState()
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    core.handle(ev.JobSubmitted("j", 1, 0, max_attempts=2, now=0.0))
    acts = core.handle(ev.AttemptFailed(aid("j", TaskKind.MAP, 0), "w1", {"message": "boom"}, now=1.0))
    assert any(isinstance(a, act.AssignAttempt) and a.attempt.n == 1 for a in acts)
    acts = core.handle(ev.AttemptFailed(aid("j", TaskKind.MAP, 0, 1), "w1", {"message": "boom"}, now=2.0))
    done = acts[-1]
    assert isinstance(done, act.JobFinished) and done.state == JobState.FAILED
    assert done.error["task"] == "j-m-00000" and done.error["message"] == "boom"
    core.validate()


def test_stale_report_from_superseded_attempt_is_ignored():
    core = MasterState()
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    core.handle(ev.JobSubmitted("j", 1, 0, now=0.0))
    core.handle(ev.WorkerLost("w1"))
    core.handle(ev.WorkerJoined("w2", "h", 1, 1.0))
    acts = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 0), "w1", {"files": []}, now=2.0))
    assert acts == [act.DiscardAttempt(aid("j", TaskKind.MAP, 0), "w1")]   # its output is cleaned, never committed
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
    map0 = [a for a in acts if isinstance(a, act.AssignAttempt) and a.attempt.task.index == 0]
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
    backup = [a for a in acts if isinstance(a, act.AssignAttempt)]
    assert len(backup) == 1 and backup[0].speculative and backup[0].attempt.n == 1
    acts = core.handle(ev.AttemptSucceeded(backup[0].attempt, backup[0].worker_id, {"files": ["c"]}, now=11.0))
    assert sum(isinstance(a, act.CommitAttempt) for a in acts) == 1
    assert any(isinstance(a, act.KillAttempt) and a.attempt.n == 0 for a in acts)
    late = core.handle(ev.AttemptSucceeded(aid("j", TaskKind.MAP, 2), "w3", {"files": ["d"]}, now=12.0))
    assert not any(isinstance(a, act.CommitAttempt) for a in late)
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
        core.handle(ev.CommitDone(a.id))
    core.handle(ev.JobSubmitted("j0", 1, 0, now=1.5))           # occupies one of the two workers
    busy = core.jobs["j0"].maps[0].running()[0].worker_id
    free = "y" if busy == "x" else "x"
    acts = core.handle(ev.JobSubmitted("j2", 2, 0, (("h",), ("h",)), ("k0", "k1"), now=2.0))
    started = [a for a in acts if isinstance(a, act.AssignAttempt)]
    assert [(a.attempt.task.index, a.worker_id, a.locality) for a in started] == [(cached_on[free], free, "cache")]
    acts = core.handle(ev.AttemptSucceeded(started[0].attempt, free, {"files": []}, now=2.5))
    assert not any(isinstance(a, act.AssignAttempt) for a in acts)   # the other split waits for its busy worker
    acts = core.handle(ev.Tick(5.1))                                  # ...but not forever
    late = [a for a in acts if isinstance(a, act.AssignAttempt)]
    assert [(a.attempt.task.index, a.worker_id, a.locality) for a in late] == [(cached_on[busy], free, "node")]
    core.validate()


def test_job_is_submitted_until_its_first_attempt_starts():
    core = MasterState()
    core.handle(ev.JobSubmitted("j", 1, 1, now=0.0))
    assert core.progress("j")["state"] == "SUBMITTED"
    acts = core.handle(ev.WorkerJoined("w1", "h", 1, 1.0))
    assert [type(a) for a in acts] == [act.AssignAttempt]
    assert core.progress("j")["state"] == "MAPPING"
    core.validate()


def test_refused_commit_never_reports_succeeded_and_fails_the_task():
    """The core asks for the commit, waits for the answer; a refusal fails the task and the job."""
    core = MasterState(speculation=False)
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    core.handle(ev.JobSubmitted("j", 2, 1, now=0.0))
    seen: list = []

    def feed(event):
        acts = core.handle(event)
        seen.extend(acts)
        states = {core.progress("j")["state"]} | {t.state.value for t in core.job("j").all_tasks()}
        assert "SUCCEEDED" not in {core.progress("j")["state"]}, f"job said SUCCEEDED after {event}"
        core.validate()
        return acts, states

    for i in range(2):
        feed(ev.AttemptSucceeded(aid("j", TaskKind.MAP, i), "w1", {"path": f"m{i}"}, now=1.0 + i))
        feed(ev.CommitDone(aid("j", TaskKind.MAP, i)))    # an intermediate map: the answer changes nothing
    reduce0 = aid("j", TaskKind.REDUCE, 0)
    acts, _ = feed(ev.AttemptSucceeded(reduce0, "w1", {"files": ["part-00000"]}, now=4.0))
    assert acts == [act.CommitAttempt(reduce0, "w1", {"files": ["part-00000"]})]
    assert core.job("j").reduces[0].state.value == "COMMITTING"
    assert core.progress("j")["state"] == "COMMITTING"
    acts, _ = feed(ev.CommitFailed(reduce0, "rename refused"))
    assert [type(a) for a in acts] == [act.JobFinished]
    assert acts[0].state == JobState.FAILED and acts[0].error["task"] == "j-r-00000"
    assert core.job("j").reduces[0].state.value == "FAILED"
    assert not [a for a in seen if isinstance(a, (act.JobFinished, act.CommitJob)) and
                getattr(a, "state", JobState.SUCCEEDED) == JobState.SUCCEEDED]
    assert core.held_jobs() == {"active": 0, "history": 1}


def test_refused_job_commit_fails_the_job():
    core = MasterState(speculation=False)
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    core.handle(ev.JobSubmitted("j", 1, 0, now=0.0))
    m = aid("j", TaskKind.MAP, 0)
    core.handle(ev.AttemptSucceeded(m, "w1", {"files": ["part-00000"]}, now=1.0))
    assert [type(a) for a in core.handle(ev.CommitDone(m))] == [act.CommitJob]
    acts = core.handle(ev.CommitFailed(None, "no _SUCCESS for you", "j"))
    assert [(type(a), a.state) for a in acts] == [(act.JobFinished, JobState.FAILED)]
    core.validate()


def test_task_whose_failures_fail_the_job_is_failed_and_the_rest_killed():
    core = MasterState(speculation=False)
    core.handle(ev.WorkerJoined("w1", "h", 2, 0.0))
    core.handle(ev.JobSubmitted("j", 2, 0, max_attempts=1, now=0.0))
    core.handle(ev.AttemptFailed(aid("j", TaskKind.MAP, 1), "w1", {"message": "boom"}, now=1.0))
    job = core.job("j")
    assert [t.state.value for t in job.maps] == ["KILLED", "FAILED"]
    core.validate()


def test_heartbeat_reconciliation_kills_strays_and_fails_lost_assignments():
    core = MasterState(speculation=False, assignment_grace=2.0)
    core.handle(ev.WorkerJoined("w1", "h", 2, 0.0))
    core.handle(ev.JobSubmitted("j", 2, 0, now=0.0))
    stray = aid("old", TaskKind.MAP, 0)
    acts = core.handle(ev.WorkerHeartbeat("w1", 1.0, (), (aid("j", TaskKind.MAP, 0), stray)))
    assert acts == [act.KillAttempt("w1", stray, "not assigned by the master")]   # map 1 is within grace
    acts = core.handle(ev.WorkerHeartbeat("w1", 3.0, (), (aid("j", TaskKind.MAP, 0),)))
    lost = aid("j", TaskKind.MAP, 1)
    assert acts[0] == act.DiscardAttempt(lost, "w1", f"{lost} is not running on w1 (assignment lost)")
    assert [(type(a), a.attempt) for a in acts[1:]] == [(act.AssignAttempt, aid("j", TaskKind.MAP, 1, 1))]
    assert core.job("j").maps[1].attempts[0].error["type"] == "AssignmentLost"
    assert core.handle(ev.WorkerHeartbeat("w1", 3.5, ())) == []   # no list, no reconciliation
    core.validate()


def test_a_lost_kill_is_resent_its_slot_stays_taken_and_refusals_are_no_failures():
    core = MasterState(speculation=False)
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    core.handle(ev.JobSubmitted("a", 1, 0, now=0.0))
    old = aid("a", TaskKind.MAP, 0)
    assert core.handle(ev.JobKillRequested("a"))[0] == act.KillAttempt("w1", old, "job killed")  # lost on the way
    acts = core.handle(ev.JobSubmitted("b", 1, 0, max_attempts=2, now=1.0))
    first = aid("b", TaskKind.MAP, 0)
    assert [(type(x), x.attempt) for x in acts] == [(act.AssignAttempt, first)]   # the core thinks w1 is free
    for n in range(3):      # more refusals than max_attempts: none of them counts, none is re-sent at once
        assert core.handle(ev.AttemptRefused(aid("b", TaskKind.MAP, 0, n), "w1", "no free slot", 1.1 + n)) == []
        assert core.handle(ev.Tick(1.2 + n)) == []          # no new work for w1 before its heartbeat
        acts = core.handle(ev.WorkerHeartbeat("w1", 1.3 + n, (), (old,)))
        assert acts == [act.KillAttempt("w1", old, "not assigned by the master")]   # re-sent; the slot is taken
        acts = core.handle(ev.WorkerHeartbeat("w1", 1.5 + n, (), ()))   # the kill took: the slot is free
        assert [(type(x), x.attempt) for x in acts] == [(act.AssignAttempt, aid("b", TaskKind.MAP, 0, n + 1))]
    job = core.job("b")
    assert job.state == JobState.MAPPING and job.maps[0].failures == 0 and not job.bad_workers
    assert job.counters["refused_attempts"] == 3 and "failed_attempts" not in job.counters
    core.validate()


def test_finished_jobs_leave_the_working_set_and_the_history_is_bounded():
    core = MasterState(speculation=False, history_jobs=3, history_seconds=100.0)
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    for n in range(5):
        core.handle(ev.JobSubmitted(f"j{n}", 1, 0, now=float(n)))
        m = aid(f"j{n}", TaskKind.MAP, 0)
        core.handle(ev.AttemptSucceeded(m, "w1", {"files": []}, now=n + 0.5))
        core.handle(ev.CommitDone(m))
        assert core.handle(ev.CommitDone(job_id=f"j{n}"))[-1].state == JobState.SUCCEEDED
        assert core.held_jobs()["active"] == 0
    assert list(core.history) == ["j2", "j3", "j4"] and core.job("j0") is None
    assert core.progress("j4")["state"] == "SUCCEEDED"
    # a late report for a remembered job still gets its output discarded
    late = aid("j4", TaskKind.MAP, 0)
    assert core.handle(ev.AttemptSucceeded(late, "w1", {"files": []}, now=6.0)) == [act.DiscardAttempt(late, "w1")]
    core.handle(ev.Tick(104.0))                         # j2 and j3 finished more than 100 s ago
    assert list(core.history) == ["j4"]
    core.validate()


def test_dispatch_table_covers_every_event():
    from mapred.core.scheduler import MasterState as M
    core = M()
    assert set(core._handlers) == set(ev.EVENTS)
