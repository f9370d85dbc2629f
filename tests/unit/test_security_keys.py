"""Keys, the authorized-keys list, ZAP principals, HMAC tokens and `mapred keys`."""
import threading
import time

import pytest
import zmq
from click.testing import CliRunner

from mapred.cli import main
from mapred.errors import ConfigError
from mapred.net import wire
from mapred.net.transport import bind_random, make_socket, recv_peer, send, stop_authenticator
from mapred.security import keys, tokens
from mapred.security.principals import Principal, Role


def test_block_tokens_bind_block_mode_and_expiry():
    key = tokens.new_key()
    t = tokens.block_token(key, 42, 7, tokens.READ, 100.0)
    grant = tokens.check_block_token(key, t, 42, tokens.READ, 99.0)
    assert (grant.block_id, grant.gen, grant.mode) == (42, 7, "r")
    for bad_call, why in [((tokens.new_key(), t, 42, "r", 99.0), "signature"),
                          ((key, t, 43, "r", 99.0), "not 43"),
                          ((key, t, 42, "w", 99.0), "reads only"),
                          ((key, t, 42, "r", 101.0), "expired"),
                          ((key, "", 42, "r", 99.0), "no token"),
                          ((key, t.replace(".7.", ".8."), 42, "r", 99.0), "signature")]:
        with pytest.raises(tokens.TokenError, match=why):
            tokens.check_block_token(*bad_call)
    j = tokens.job_token(key, "job1")
    tokens.check_job_token(j, "job1", j)
    with pytest.raises(tokens.TokenError):
        tokens.check_job_token(tokens.job_token(key, "job2"), "job1", j)


def test_authorized_keys_round_trip_and_reject_garbage(tmp_path):
    d = keys.KeyDir(str(tmp_path / "k"))
    alice = d.generate("alice", "user")
    d.generate("w1", Role.WORKER)
    ring = keys.AuthorizedKeys(d.authorized)
    assert ring.lookup(alice.public) == Principal("alice", Role.USER)
    assert keys.read_key(d.file("alice")) == alice
    assert (tmp_path / "k" / "alice.key").stat().st_mode & 0o077 == 0
    assert keys.revoke_authorized(d.authorized, "alice") == 1
    assert ring.lookup(alice.public) is None
    with open(d.authorized, "a") as f:
        f.write("notakey bob user\n")
    with pytest.raises(ConfigError, match="line"):
        ring.lookup("x")
    with pytest.raises(ConfigError):
        keys.check_name("../evil")
    with pytest.raises(ConfigError):
        keys.check_role("root")


def _serve(ctx, stop, ready, seen):
    sock = make_socket(ctx, zmq.ROUTER)
    ready.append(bind_random(sock))        # publishes this daemon's own key for the address
    while not stop.is_set():
        got = recv_peer(sock, 0.1, routed=True)
        if got is not None:
            route, msg, _, peer = got
            seen.append(peer)
            send(sock, wire.Ok(rid=msg.rid, info={"you": str(peer)}), route=route)
    sock.close(0)


def _ask(ctx, port, timeout=1.5):
    sock = make_socket(ctx, zmq.DEALER)
    sock.connect(f"tcp://127.0.0.1:{port}")
    send(sock, wire.Ok(rid=1))
    ok = bool(sock.poll(int(timeout * 1000)))
    sock.close(0)
    return ok


@pytest.mark.timeout(30)
def test_zap_names_each_connection_by_its_key_and_revocation_locks_it_out(tmp_path, monkeypatch):
    d = keys.KeyDir(str(tmp_path / "k"))
    for name, role in [("alice", "user"), ("w1", "worker"), ("eve", "user"), ("server-side", "admin")]:
        d.generate(name, role)
    keys.revoke_authorized(d.authorized, "eve")        # eve keeps her key file, but is not admitted
    monkeypatch.setenv("MAPRED_KEYS", d.path)
    monkeypatch.delenv("MAPRED_SECRET", raising=False)
    ctx = zmq.Context()
    stop, ready, seen = threading.Event(), [], []
    thread = threading.Thread(target=_serve, args=(ctx, stop, ready, seen), daemon=True)
    monkeypatch.setenv("MAPRED_PRINCIPAL", "server-side")
    thread.start()
    while not ready:
        time.sleep(0.01)
    try:
        client_ctx = zmq.Context()
        for name, answered in [("alice", True), ("w1", True), ("eve", False)]:
            monkeypatch.setenv("MAPRED_PRINCIPAL", name)
            assert _ask(client_ctx, ready[0]) is answered, name
        assert seen == [Principal("alice", Role.USER), Principal("w1", Role.WORKER)]
        keys.revoke_authorized(d.authorized, "alice")
        monkeypatch.setenv("MAPRED_PRINCIPAL", "alice")
        assert not _ask(client_ctx, ready[0])           # a new connection after revoke is refused
        monkeypatch.setenv("MAPRED_PRINCIPAL", "")
        with pytest.raises(ConfigError, match="MAPRED_PRINCIPAL"):
            make_socket(client_ctx, zmq.DEALER)
        # The client pins the key the daemon published for its address: one listed wrongly
        # (another daemon's, as a stolen node key posing as this one would be) gets no answer.
        monkeypatch.setenv("MAPRED_PRINCIPAL", "w1")
        assert _ask(client_ctx, ready[0])
        d.publish_daemon(f"tcp://127.0.0.1:{ready[0]}", keys.read_key(d.file("w1")).public, "w1")
        assert not _ask(client_ctx, ready[0])
        with pytest.raises(ConfigError, match="no daemon key"):   # an address nobody published
            make_socket(client_ctx, zmq.DEALER).connect("tcp://127.0.0.1:1")
        client_ctx.destroy(0)
    finally:
        stop.set()
        thread.join(5)
        stop_authenticator(ctx)
        ctx.term()


def test_keys_cli(tmp_path):
    run = CliRunner().invoke
    kd = str(tmp_path / "k")
    r = run(main, ["keys", "gen", "alice", "--role", "user", "--dir", kd])
    assert r.exit_code == 0 and "alice (user)" in r.output
    assert run(main, ["keys", "gen", "alice", "--role", "user", "--dir", kd]).exit_code == 1
    pub = keys.KeyPair.generate().public
    assert run(main, ["keys", "add", pub, "node7", "--role", "datanode", "--dir", kd]).exit_code == 0
    r = run(main, ["keys", "list", "--dir", kd])
    assert "alice" in r.output and "node7" in r.output and "datanode" in r.output
    r = run(main, ["keys", "revoke", "alice", "--dir", kd])
    assert r.exit_code == 0 and "revoked 1" in r.output
    assert "alice" not in run(main, ["keys", "list", "--dir", kd]).output
    r = run(main, ["keys", "revoke", "nobody", "--dir", kd])
    assert r.exit_code == 1 and "no admitted key" in r.output
    r = run(main, ["keys", "add", "short", "x", "--role", "user", "--dir", kd])
    assert r.exit_code == 1 and "Traceback" not in r.output
