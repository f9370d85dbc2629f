"""The async-SGD parameter holder: its sans-IO core, its wire checks, and its lifetime."""
import msgpack
import numpy as np
import psutil
import pytest

import mapred
import models
from mapred.errors import ModelError
from models.async_sgd import HolderClient, start_holder
from mapred import wire
from mapred.errors import ProtocolError
from models.param_server import Holder, answer, decode, encode


def init(holder, max_staleness=2):
    msg, data = decode(encode(wire.HolderInit(shape_w=[3, 1], shape_b=[1], lr=0.5, alpha=0.0, penalty="l2",
                                              max_staleness=max_staleness), np.zeros((3, 1)), np.zeros(1)))
    holder.handle(msg, data)


def push(holder, base, grad=1.0):
    msg, data = decode(encode(wire.HolderPush(base=base, n=1), np.full((3, 1), grad), np.ones(1)))
    reply, _ = decode(holder.handle(msg, data))
    return {"accepted": reply.accepted, "staleness": reply.staleness, "version": reply.version}


@pytest.mark.timeout(30)
def test_pushes_apply_and_stale_ones_are_rejected():
    h = Holder()
    init(h, max_staleness=2)
    assert push(h, 0)["accepted"] and push(h, 0)["staleness"] == 1
    assert push(h, 0)["staleness"] == 2
    late = push(h, 0)
    assert late["staleness"] == 3 and not late["accepted"]
    np.testing.assert_allclose(h.W, -1.5)  # three accepted steps of lr 0.5
    assert (h.accepted, h.rejected, h.staleness_max) == (3, 1, 3)
    assert h.histogram == {0: 1, 1: 1, 2: 1, 3: 1}


@pytest.mark.timeout(30)
def test_malformed_requests_are_refused_without_change():
    h = Holder()
    init(h)
    with pytest.raises(ProtocolError):
        decode([b"other-protocol", msgpack.packb({"t": "ps.pull"})])
    with pytest.raises(ProtocolError):
        decode([wire.VERSION, msgpack.packb([1, 2])])
    with pytest.raises(ProtocolError, match="unknown message type 'exec'"):
        decode([wire.VERSION, msgpack.packb({"t": "exec"})])
    with pytest.raises(ProtocolError, match="ps.push.base: expected int"):  # typed fields, checked on decode
        decode([wire.VERSION, msgpack.packb({"t": "ps.push", "base": "0", "n": 1})])
    with pytest.raises(ValueError, match="array frame of 8 bytes"):
        h.handle(wire.HolderPush(base=0, n=1), [b"\0" * 8, b"\0" * 8])
    with pytest.raises(ValueError, match="unknown request"):
        h.handle(wire.JobStatusRequest(job_id="x"), [])  # a valid message, but not the holder's
    reply, stop = answer(h, [wire.VERSION, msgpack.packb({"t": "ps.init", "lr": "fast"})])
    assert isinstance(decode(reply)[0], wire.Error) and not stop  # answered, not raised
    np.testing.assert_array_equal(h.W, 0.0)


def holders():
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "models.param_server" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:      # gone, or a zombie another test has not reaped: not a holder
            pass
    return found


@pytest.mark.timeout(60)
def test_holder_process_is_gone_after_fit_and_after_failure(c2):
    X, y, *_ = models.synthetic.make_logistic(5000, 5, seed=0)
    models.LogisticRegression(solver="async", epochs=2).fit(mapred.from_numpy(X, y, splits=2), cluster=c2)
    assert holders() == []
    Xbig = X * 1e4
    with pytest.raises(ModelError, match="diverged at pass"):
        models.LogisticRegression(solver="async", lr=100.0, epochs=5, lr_schedule="constant").fit(
            mapred.from_numpy(Xbig, y, splits=2), cluster=c2)
    assert holders() == []


@pytest.mark.timeout(30)
def test_a_garbage_frame_gets_an_error_reply_and_the_holder_lives_on():
    proc, address = start_holder()
    try:
        client = HolderClient(address, (3, 1), (1,))
        client.sock.send_multipart([b"junk", b"\xc1"])
        reply, _ = decode(client.sock.recv_multipart())
        assert isinstance(reply, wire.Error)
        with pytest.raises(ModelError, match="refused 'ps.pull': not initialised"):
            client.pull()  # not initialised
        client.call(wire.HolderStop())
        client.close()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.mark.timeout(120)
def test_holder_on_a_routable_address_needs_the_secret_and_then_speaks_curve(tmp_path, monkeypatch):
    """Workers on other hosts reach the holder only through a keyed (CURVE) socket on a non-loopback bind."""
    import mapred
    from models.async_sgd import start_holder
    from mapred.errors import ModelError
    monkeypatch.delenv("MAPRED_SECRET", raising=False)
    with pytest.raises(ModelError, match="did not start"):
        start_holder("0.0.0.0")                       # no secret: the public bind is refused
    monkeypatch.setenv("MAPRED_SECRET", "holder-test-secret")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    y = (X @ np.arange(1, 6) > 0).astype(int)
    with mapred.LocalCluster(2) as cluster:          # executors inherit the secret
        clf = models.LogisticRegression(solver="async", lr=0.05, epochs=2, batch_size=64, seed=0,
                                        holder_host="0.0.0.0")
        clf.fit(mapred.from_numpy(X, y, splits=4, path=str(tmp_path / "ds")), cluster=cluster)
    assert (clf.predict(X) == y).mean() > 0.9
