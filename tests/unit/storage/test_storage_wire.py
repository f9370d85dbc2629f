"""The wire module: round trips, and every kind of garbage becomes a ProtocolError."""
import msgpack
import pytest

from mapred.net import wire
from mapred.errors import ProtocolError


def test_round_trip_keeps_fields_and_data_frames():
    msg = wire.WritePacket(rid=7, block_id=42, seq=3, offset=100, last=True,
                           pipeline=["tcp://127.0.0.1:1"], stream="s")
    got, data = wire.decode(wire.encode(msg, b"abc", b"\x00" * 4))
    assert got == msg and data == [b"abc", b"\x00" * 4]


def test_defaults_may_be_omitted():
    frames = [wire.VERSION, msgpack.packb({"t": "nn.mkdir", "path": "/a"})]
    msg, _ = wire.decode(frames)
    assert msg == wire.Mkdir(path="/a", parents=False)


@pytest.mark.parametrize("frames, words", [
    ([], "frame"),
    ([b"XXXX", b""], "version"),
    ([wire.VERSION, b"\xc1\xc1"], "msgpack"),
    ([wire.VERSION, msgpack.packb([1, 2])], "not a map"),
    ([wire.VERSION, msgpack.packb({"t": "nope"})], "unknown message type"),
    ([wire.VERSION, msgpack.packb({"t": "nn.mkdir"})], "missing field 'path'"),
    ([wire.VERSION, msgpack.packb({"t": "nn.mkdir", "path": 5})], "expected str"),
    ([wire.VERSION, msgpack.packb({"t": "nn.mkdir", "path": "/", "x": 1})], "unknown field"),
    ([wire.VERSION, msgpack.packb({"t": "dt.read", "block_id": True})], "expected int"),
    ([wire.VERSION, msgpack.packb({"t": "nn.listing", "entries": [1]})], "expected dict"),
    ([wire.VERSION, msgpack.packb({"t": "nn.mkdir", "path": "x" * 70000})], "msgpack"),
])
def test_garbage_is_a_protocol_error(frames, words):
    with pytest.raises(ProtocolError, match=words):
        wire.decode(frames)


def test_too_many_data_frames():
    frames = wire.encode(wire.Ok()) + [b""] * (wire.MAX_DATA_FRAMES + 1)
    with pytest.raises(ProtocolError, match="data frames"):
        wire.decode(frames)


def test_every_registered_type_is_unique_and_round_trips_defaults():
    reg = wire.registered()
    assert len(reg) == len(set(reg.values()))
    assert reg["nn.create"] is wire.Create
