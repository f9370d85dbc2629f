"""Typed records inside wire messages: attempt specs, reports, job settings, DataNode commands, the pipe."""
import msgpack
import pytest

from mapred.errors import ProtocolError
from mapred.net import wire
from mapred.runtime.plan import JobSettings
from mapred.task.spec import AttemptReport, AttemptResult, FetchSettings, MapSpec, ReduceSpec
from mapred.types import Split

SPLIT = Split(0, "text", "/in/a.txt", 0, 100, ("h1",))


def roundtrip(msg):
    return wire.decode(wire.encode(msg))[0]


def test_specs_travel_typed_with_one_set_of_defaults():
    spec = MapSpec(job_id="j", task="j-m-00000", attempt="j-m-00000-a0", task_index=0, output="/out",
                   split=SPLIT, num_partitions=2)
    got = roundtrip(wire.Assign(job_id="j", spec=spec))
    assert got.spec == spec and isinstance(got.spec.split, Split)
    from mapred.config import Config
    assert spec.batch_lines == Config().batch_lines          # the one default, the config's
    red = ReduceSpec(job_id="j", task="j-r-00000", attempt="j-r-00000-a0", task_index=0, output="/out",
                     partition=0, sources=((0, "w1", {"path": "/p"}),), shuffle=FetchSettings(retries=5))
    back = roundtrip(wire.Assign(job_id="j", spec=red)).spec
    assert isinstance(back, ReduceSpec) and back.shuffle.retries == 5 and back.sources[0][2] == {"path": "/p"}


def _raw(header):
    return [wire.VERSION, msgpack.packb(header, use_bin_type=True)]


@pytest.mark.parametrize("spec, why", [
    ({"r": "map_spec", "job_id": "j"}, "missing field"),
    ({"r": "nope"}, "is not a record"),
    ("not a map", "expected a record"),
    ({"r": "job_settings", "name": "x", "num_reducers": 1, "map_only": False, "output_format": "text"},
     None),   # a record, but its fields are checked like any other
])
def test_bad_specs_are_refused_on_decode(spec, why):
    frames = _raw({"t": "mw.assign", "job_id": "j", "spec": spec})
    if why is None:
        assert isinstance(wire.decode(frames)[0].spec, JobSettings)   # decodes; the worker checks the kind
        return
    with pytest.raises(ProtocolError, match=why):
        wire.decode(frames)


def test_a_wrongly_typed_field_inside_a_spec_is_refused():
    good = wire.encode(wire.Assign(job_id="j", spec=MapSpec(
        job_id="j", task="t", attempt="a", task_index=0, output="/o", split=SPLIT, num_partitions=1)))
    header = msgpack.unpackb(good[1])
    header["spec"]["num_partitions"] = "two"
    with pytest.raises(ProtocolError, match="num_partitions"):
        wire.decode(_raw(header))
    header["spec"]["num_partitions"] = 1
    header["spec"]["split"]["start"] = "zero"
    with pytest.raises(ProtocolError, match="start"):
        wire.decode(_raw(header))


def test_job_settings_validate_their_values():
    s = JobSettings("wc", 2, False, "text")
    assert roundtrip(wire.SubmitJob(job_id="j1", settings=s, splits=[SPLIT], output="/o")).settings == s
    header = msgpack.unpackb(wire.encode(wire.SubmitJob(job_id="j1", settings=s, splits=[], output="/o"))[1])
    header["settings"]["num_reducers"] = -3
    with pytest.raises(ProtocolError, match="negative"):
        wire.decode(_raw(header))


def test_failure_reports_are_records():
    r = AttemptReport("ValueError", "boom", task="t", offset=12, fatal=True, fetch_failed_map=3)
    got = roundtrip(wire.AttemptFail(worker_id="w", attempt="a", report=r)).report
    assert got == r and got.as_error()["offset"] == 12 and "partition" not in got.as_error()
    with pytest.raises(ProtocolError):
        wire.decode(_raw({"t": "mw.failed", "worker_id": "w", "attempt": "a", "report": {"type": "X"}}))


def test_datanode_commands_are_typed():
    cmds = [wire.datanode_command(c) for c in (
        {"op": "register"}, {"op": "delete", "blocks": [1, 2]},
        {"op": "replicate", "block_id": 7, "length": 10, "targets": [["dn2", "tcp://127.0.0.1:1"]]})]
    got = roundtrip(wire.Commands(commands=cmds)).commands
    assert got == cmds
    with pytest.raises(ProtocolError):
        wire.decode(_raw({"t": "dn.commands", "commands": [{"op": "delete", "blocks": [1]}]}))
    with pytest.raises(ValueError, match="unknown DataNode command"):
        wire.datanode_command({"op": "format-disk"})


def test_pipe_messages_roundtrip_and_validate():
    msg = wire.PipeDone(attempt="a", result=AttemptResult({"files": ["part-00000"]}, {"map": {"n": 1}}, ("k",)))
    assert wire.loads(wire.dumps(msg)) == msg
    with pytest.raises(ProtocolError):
        wire.loads(wire.VERSION + msgpack.packb({"t": "ex.progress", "attempt": "a", "fraction": "half",
                                                 "counters": {}}))
