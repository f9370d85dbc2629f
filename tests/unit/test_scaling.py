"""The autoscaler's policy, fed observations with time passed in: asymmetric delays, limits, reasons."""
from mapred.core.scaling import Grow, Retire, Scaler, ScalingPolicy, WorkerView


def views(*specs):
    """``("w1", running, needed)`` -> 1-slot ALIVE workers."""
    return [WorkerView(w, "ALIVE", 1, running, needed) for w, running, needed in specs]


def test_grows_only_after_the_pressure_lasts_and_never_beyond_max():
    s = Scaler(ScalingPolicy(min_workers=1, max_workers=3, up_delay=2.0, idle_timeout=30.0))
    assert s.decide(0.0, waiting=5, workers=views(("w1", 1, 0))) == []
    assert s.decide(1.9, waiting=5, workers=views(("w1", 1, 0))) == []
    [grow] = s.decide(2.0, waiting=5, workers=views(("w1", 1, 0)))
    assert isinstance(grow, Grow) and grow.count == 2 and "5 tasks waiting" in grow.reason
    # the launched two count until they register: no second growth meanwhile
    assert s.decide(10.0, waiting=5, workers=views(("w1", 1, 0))) == []
    assert s.decide(20.0, waiting=5, workers=views(("w1", 1, 0), ("w2", 1, 0), ("w3", 1, 0)), registered=2) == []


def test_a_free_slot_means_no_pressure():
    s = Scaler(ScalingPolicy(max_workers=3, up_delay=0.0))
    assert s.decide(0.0, waiting=2, workers=views(("w1", 0, 0))) == []


def test_retires_idle_workers_after_the_long_delay_never_below_min_nor_holding_outputs():
    s = Scaler(ScalingPolicy(min_workers=1, max_workers=3, up_delay=1.0, idle_timeout=30.0))
    ws = views(("w1", 0, 0), ("w2", 0, 2), ("w3", 0, 0))     # w2 holds needed map output
    assert s.decide(0.0, 0, ws) == []
    assert s.decide(29.0, 0, ws) == []
    out = s.decide(30.0, 0, ws)
    assert sorted(d.worker_id for d in out) == ["w1", "w3"]     # w2 stays: its output is needed
    assert all(isinstance(d, Retire) and "idle for 30.0s" in d.reason for d in out)
    only = views(("w2", 0, 0))
    assert s.decide(1000.0, 0, only) == []                   # at the minimum


def test_busy_or_waiting_resets_idleness():
    s = Scaler(ScalingPolicy(min_workers=1, max_workers=3, idle_timeout=10.0))
    s.decide(0.0, 0, views(("w1", 0, 0), ("w2", 0, 0)))
    s.decide(5.0, 0, views(("w1", 0, 0), ("w2", 1, 0)))     # w2 busy: its idle clock restarts
    out = s.decide(12.0, 0, views(("w1", 0, 0), ("w2", 0, 0)))
    assert [d.worker_id for d in out] == ["w1"]
    assert s.decide(30.0, 3, views(("w2", 0, 0))) == []      # tasks waiting: never shrink


def test_below_min_grows_at_once():
    s = Scaler(ScalingPolicy(min_workers=2, max_workers=3))
    [g] = s.decide(0.0, 0, views(("w1", 0, 0)))
    assert g.count == 1 and "below the minimum" in g.reason
