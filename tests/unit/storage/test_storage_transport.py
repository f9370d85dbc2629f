"""The socket helper: CURVE from a shared secret, loopback-only without one, RPC with timeouts."""
import threading

import pytest
import zmq

from mapred.net import wire
from mapred.errors import ClusterError, ConfigError
from mapred.net.transport import (
    Backoff,
    RpcClient,
    bind,
    bind_random,
    derive_keys,
    is_loopback,
    make_socket,
    recv,
    send,
    stop_authenticator,
)


def test_keys_are_deterministic_and_role_specific():
    assert derive_keys("k", "server") == derive_keys("k", "server")
    assert derive_keys("k", "server") != derive_keys("k", "client")
    assert derive_keys("k", "server") != derive_keys("other", "server")


@pytest.mark.parametrize("host, ok", [("127.0.0.1", True), ("127.5.5.5", True), ("::1", True),
                                      ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False),
                                      ("example.com", False)])
def test_loopback_detection(host, ok):
    assert is_loopback(host) is ok


def test_public_bind_needs_a_secret():
    ctx = zmq.Context()
    sock = make_socket(ctx, zmq.ROUTER, secret="")
    with pytest.raises(ConfigError, match="0.0.0.0"):
        bind(sock, "0.0.0.0", 0)
    sock.close(0)
    keyed = make_socket(ctx, zmq.ROUTER, secret="k")
    assert bind_random(keyed, "127.0.0.1") > 0
    keyed.close(0)
    stop_authenticator(ctx)
    ctx.term()


def echo_server(ctx, secret, ready, stop):
    sock = make_socket(ctx, zmq.ROUTER, secret=secret)
    ready.append(bind_random(sock))
    while not stop.is_set():
        got = recv(sock, 0.05, routed=True)
        if got:
            route, msg, _ = got
            send(sock, wire.Ok(rid=msg.rid, info={"echo": msg.path}), route=route)
    sock.close(0)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("client_secret, answers", [("k", True), ("", False), ("wrong", False)])
def test_curve_admits_only_holders_of_the_secret(client_secret, answers):
    ctx = zmq.Context()
    ready, stop = [], threading.Event()
    t = threading.Thread(target=echo_server, args=(ctx, "k", ready, stop))
    t.start()
    while not ready:
        pass
    rpc = RpcClient(ctx, f"tcp://127.0.0.1:{ready[0]}", timeout=1.0, secret=client_secret)
    try:
        if answers:
            reply, _ = rpc.call(wire.GetStatus(path="/p"))
            assert reply.info == {"echo": "/p"}
        else:
            with pytest.raises(ClusterError, match="did not answer"):
                rpc.call(wire.GetStatus(path="/p"))
    finally:
        rpc.close()
        stop.set()
        t.join()
        stop_authenticator(ctx)
        ctx.term()


def test_backoff_doubles_to_a_cap():
    b = Backoff(base=0.1, cap=0.5)
    assert [b.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    b.reset()
    assert b.next() == 0.1
