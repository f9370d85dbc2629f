"""Worker drain in the scheduling core: no new tasks, no lost work, retire only when nothing is needed."""
from mapred.core import actions as act
from mapred.core import events as ev
from mapred.core.scheduler import MasterState
from mapred.types import AttemptId, JobState, TaskId, TaskKind

M, R = TaskKind.MAP, TaskKind.REDUCE


def aid(kind, i, n=0, job="j"):
    return AttemptId(TaskId(job, kind, i), n)


def assigns(actions):
    return [(a.worker_id, a.attempt) for a in actions if isinstance(a, act.AssignAttempt)]


def retired(actions):
    return [a.worker_id for a in actions if isinstance(a, act.RetireWorker)]


def succeed(core, attempt, worker, output, now):
    """An attempt's success and the commits the shell would answer; every resulting action."""
    out, queue = [], core.handle(ev.AttemptSucceeded(attempt, worker, output, now=now))
    while queue:
        a = queue.pop(0)
        out.append(a)
        if isinstance(a, act.CommitAttempt):
            queue += core.handle(ev.CommitDone(a.attempt))
        elif isinstance(a, act.CommitJob):
            queue += core.handle(ev.CommitDone(job_id=a.job_id))
    return out


def two_workers(**kw):
    core = MasterState(speculation=False, dead_timeout=1000, **kw)
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    core.handle(ev.WorkerJoined("w2", "h", 1, 0.0))
    return core


def test_a_drained_worker_finishes_serves_its_outputs_and_retires_after_the_job():
    core = two_workers()
    acts = core.handle(ev.JobSubmitted("j", 3, 1, now=0.0))
    assert assigns(acts) == [("w1", aid(M, 0)), ("w2", aid(M, 1))]
    acts = core.handle(ev.WorkerDrainRequested("w1", now=0.5))
    assert acts == [] and core.workers["w1"].state == "DECOMMISSIONING"
    acts = succeed(core, aid(M, 0), "w1", {"path": "m0"}, 1.0)
    assert assigns(acts) == [] and retired(acts) == []        # holds m0, which the reduce needs
    acts = succeed(core, aid(M, 1), "w2", {"path": "m1"}, 1.1)
    assert assigns(acts) == [("w2", aid(M, 2))]               # never w1 again
    acts = succeed(core, aid(M, 2), "w2", {"path": "m2"}, 1.2)
    assert assigns(acts) == [("w2", aid(R, 0))]
    reduce = [a for a in acts if isinstance(a, act.AssignAttempt)][0]
    assert (0, "w1", {"path": "m0"}) in reduce.map_outputs    # read from the draining worker
    assert core.workers["w1"].state == "DECOMMISSIONING"
    acts = succeed(core, aid(R, 0), "w2", {"files": ["p"]}, 2.0)
    assert retired(acts) == ["w1"]                            # the job no longer needs m0
    assert any(isinstance(a, act.JobFinished) and a.state == JobState.SUCCEEDED for a in acts)
    assert core.workers["w1"].state == "DECOMMISSIONED"
    counters = core.job_counters("j")["job"]
    assert counters.get("rerun_maps", 0) == 0 and counters.get("lost_attempts", 0) == 0
    core.handle(ev.Tick(5000.0))                              # silence after retiring is no loss
    assert core.workers["w1"].state == "DECOMMISSIONED"
    core.validate()


def test_an_idle_worker_with_nothing_needed_retires_at_once():
    core = MasterState()
    core.handle(ev.WorkerJoined("w1", "h", 2, 0.0))
    assert retired(core.handle(ev.WorkerDrainRequested("w1", now=1.0))) == ["w1"]
    assert retired(core.handle(ev.WorkerDrainRequested("w1", now=1.0))) == []


def test_drain_timeout_retires_anyway_and_reruns_what_it_ran():
    core = two_workers()
    core.handle(ev.JobSubmitted("j", 2, 1, now=0.0))
    core.handle(ev.WorkerDrainRequested("w1", timeout=5.0, now=0.0))
    assert retired(core.handle(ev.Tick(4.0))) == []
    acts = core.handle(ev.Tick(5.0))                          # m0 still running on w1
    assert retired(acts) == ["w1"]
    assert core.workers["w1"].state == "DECOMMISSIONED"
    assert core.job_counters("j")["job"]["lost_attempts"] == 1
    core.validate()


def test_a_drained_worker_never_gets_a_speculative_backup():
    core = MasterState(speculation=True, speculation_min_seconds=0.1, dead_timeout=1000)
    core.handle(ev.WorkerJoined("w1", "h", 1, 0.0))
    core.handle(ev.WorkerJoined("w2", "h", 1, 0.0))
    core.handle(ev.JobSubmitted("j", 2, 0, now=0.0))
    core.handle(ev.WorkerDrainRequested("w2", now=0.0))
    succeed(core, aid(M, 0), "w1", {"files": []}, 1.0)
    acts = core.handle(ev.Tick(100.0))
    assert all(w != "w2" for w, _ in assigns(acts))
