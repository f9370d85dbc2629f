"""Every ZeroMQ socket of mapred is made here, so security and hygiene are applied once.

``make_socket`` sets ``linger=0`` (a dead peer never blocks shutdown) and, when
a cluster secret is configured (``MAPRED_SECRET``), CURVE encryption and
authentication.  Keys are derived deterministically from the secret: servers
use the derived server key pair, clients the derived client key pair and the
server's public key, and a ZAP handler admits only the derived client key.  A
peer that does not know the secret can neither read traffic nor be heard.

A server that binds a non-loopback address without a secret refuses to start:
an open port that accepts job code or block writes from anyone is the hole this
design exists to close.

Also here: ``bind_random``, frame send/receive with timeouts, and the backoff
used by request/response clients to reconnect.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import logging
import re
import threading
import time
import weakref

import zmq
from zmq.utils import z85

from mapred import config as _config
from mapred.net import wire
from mapred.errors import ClusterError, ConfigError, ProtocolError

log = logging.getLogger(__name__)

SERVER_KINDS = (zmq.ROUTER, zmq.REP, zmq.PUB, zmq.PULL)
_auth_lock = threading.Lock()
_authenticators: dict[int, object] = {}
_socket_secret: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def derive_keys(secret: str, role: str) -> tuple[bytes, bytes]:
    """The (public, secret) Z85 CURVE key pair for ``role`` ("server"/"client") from ``secret``."""
    seed = hashlib.sha256(f"mapred-curve-{role}:{secret}".encode()).digest()
    secret_key = z85.encode(seed)
    return zmq.curve_public(secret_key), secret_key


def _secret(secret: str | None) -> str:
    return _config.load().secret if secret is None else secret


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_socket(ctx: zmq.Context, kind: int, *, server: bool | None = None,
                secret: str | None = None, identity: bytes | None = None) -> zmq.Socket:
    """A socket of ``kind`` with linger 0 and, when keyed, CURVE as server or client.

    ``server`` defaults to True for ROUTER/REP/PUB/PULL.  ``secret`` defaults to
    the configured ``Config.secret``.
    """
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity)
    key = _secret(secret)
    is_server = kind in SERVER_KINDS if server is None else server
    _socket_secret[sock] = key  # remembered for the bind check
    if key:
        if is_server:
            _ensure_authenticator(ctx, key)
            public, private = derive_keys(key, "server")
            sock.curve_publickey, sock.curve_secretkey = public, private
            sock.curve_server = True
        else:
            public, private = derive_keys(key, "client")
            sock.curve_publickey, sock.curve_secretkey = public, private
            sock.curve_serverkey = derive_keys(key, "server")[0]
    return sock


def _ensure_authenticator(ctx: zmq.Context, key: str) -> None:
    """One ZAP handler per context, admitting only the client key derived from ``key``."""
    from zmq.auth.thread import ThreadAuthenticator

    with _auth_lock:
        if id(ctx) in _authenticators:
            return
        auth = ThreadAuthenticator(ctx, log=logging.getLogger("mapred.zap"))
        auth.start()
        auth.configure_curve_callback(domain="*", credentials_provider=_KeyCheck(key))
        _authenticators[id(ctx)] = auth


class _KeyCheck:
    """ZAP credentials provider: only the derived client public key may connect."""

    def __init__(self, key: str) -> None:
        self.allowed = derive_keys(key, "client")[0]

    def callback(self, domain: str, client_key: bytes) -> bool:
        ok = z85.encode(client_key) == self.allowed if len(client_key) == 32 \
            else client_key == self.allowed
        if not ok:
            log.warning("refused a CURVE client with an unknown key")
        return ok


def stop_authenticator(ctx: zmq.Context) -> None:
    """Stop the ZAP thread of ``ctx`` (call before ``ctx.term()``)."""
    with _auth_lock:
        auth = _authenticators.pop(id(ctx), None)
    if auth is not None:
        auth.stop()


def check_bind_host(host: str, secret: str) -> None:
    """Refuse to listen on a public address without a cluster secret."""
    if not secret and not is_loopback(host):
        raise ConfigError(f"refusing to bind {host}: a non-loopback address needs MAPRED_SECRET "
                          "(CURVE keys) so that strangers cannot talk to this node")


_TCP_ADDR = re.compile(r"^tcp://[^:/\s]+:\d{1,5}$")


def check_tcp_addr(addr, what: str = "address") -> str:
    """``addr`` if it looks like ``tcp://host:port``, else a ConfigError naming it."""
    if not isinstance(addr, str) or not _TCP_ADDR.match(addr):
        raise ConfigError(f"{what} {addr!r} must look like tcp://host:port")
    return addr


def bind_random(sock: zmq.Socket, host: str = "127.0.0.1") -> int:
    """Bind ``sock`` to a free port on ``host`` and return the port."""
    check_bind_host(host, _socket_secret.get(sock, _secret(None)))
    return sock.bind_to_random_port(f"tcp://{host}")


def bind(sock: zmq.Socket, host: str = "127.0.0.1", port: int = 0) -> int:
    """Bind to ``host:port`` (0 = random) and return the port actually bound."""
    if not port:
        return bind_random(sock, host)
    check_bind_host(host, _socket_secret.get(sock, _secret(None)))
    try:
        sock.bind(f"tcp://{host}:{port}")
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot bind tcp://{host}:{port}: {exc}") from None
    return port


def send(sock: zmq.Socket, msg: wire.Message, *data, route: list | None = None,
         timeout: float | None = None) -> bool:
    """Send ``msg`` (after ``route`` identity frames); False if it could not go out in time."""
    frames = list(route or []) + wire.encode(msg, *data)
    if timeout is not None and not sock.poll(int(timeout * 1000), zmq.POLLOUT):
        return False
    try:
        sock.send_multipart(frames, copy=False, flags=zmq.NOBLOCK if timeout is not None else 0)
    except zmq.Again:
        return False
    return True


def recv(sock: zmq.Socket, timeout: float | None, routed: bool = False):
    """``(route, message, data)`` or None on timeout; ``ProtocolError`` on a bad message.

    ``routed`` sockets (ROUTER) carry identity frames first, split at the
    version frame.
    """
    if timeout is not None and not sock.poll(int(timeout * 1000)):
        return None
    frames = sock.recv_multipart(copy=False)
    frames = [f.buffer if len(f) >= 65536 else f.bytes for f in frames]
    route: list = []
    if routed:
        split = next((i for i, f in enumerate(frames) if bytes(f[:4]) == wire.VERSION), None)
        if split is None:
            raise ProtocolError("routed message without a version frame")
        route, frames = frames[:split], frames[split:]
    msg, data = wire.decode(frames)
    return route, msg, data


def recv_or_drop(sock: zmq.Socket, timeout: float | None, who: str, routed: bool = False):
    """``recv``, but a malformed message is logged (naming ``who`` received it) and dropped: ``None``."""
    try:
        return recv(sock, timeout, routed=routed)
    except ProtocolError as exc:
        logging.getLogger("mapred.net.transport").warning("%s dropped a bad message: %s", who, exc)
        return None


class Backoff:
    """Exponential backoff with a cap: 0.05 s, 0.1 s, ... up to ``cap`` seconds."""

    def __init__(self, base: float = 0.05, cap: float = 2.0) -> None:
        self.base, self.cap, self.n = base, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.base * (2 ** self.n))
        self.n += 1
        return delay

    def reset(self) -> None:
        self.n = 0


PROBE_EVERY = 0.5       # seconds between checks that a silent peer's port is open at all
REFUSED_GRACE = 2.0     # seconds of refused connections before a never-seen peer is reported dead


def tcp_refused(addr: str) -> bool:
    """True if nothing listens at ``tcp://host:port`` (the connection is refused); False if unknown."""
    import socket
    host, _, port = addr[len("tcp://"):].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):
        return False


class RpcClient:
    """Request/response over a DEALER: one request at a time, replies matched by ``rid``.

    On a timeout the socket is closed and reopened (ZeroMQ would otherwise
    deliver the stale reply later); idempotent requests are retried with
    backoff until ``deadline`` seconds have passed.
    """

    def __init__(self, ctx: zmq.Context, addr: str, timeout: float = 10.0,
                 secret: str | None = None) -> None:
        self.ctx, self.addr, self.timeout, self.secret = ctx, addr, timeout, secret
        self._rid = 0
        self.answered = False        # once a peer answered, a refusal may be a restart: keep trying
        self._refused_since = None
        self.sock = self._connect()

    def _connect(self) -> zmq.Socket:
        sock = make_socket(self.ctx, zmq.DEALER, secret=self.secret)
        sock.connect(self.addr)
        return sock

    def reconnect(self) -> None:
        self.sock.close(0)
        self.sock = self._connect()

    def call(self, msg: wire.Message, *data, timeout: float | None = None,
             retry: bool = False) -> tuple[wire.Message, list]:
        """Send ``msg`` and return ``(reply, data)``; ``ClusterError`` if nobody answers."""
        budget = self.timeout if timeout is None else timeout
        backoff = Backoff(cap=1.0)
        while True:
            attempt = budget if not retry else min(budget, 2.0 + backoff.n)
            reply = self._once(msg, data, attempt)
            if reply is not None:
                return reply
            self.reconnect()
            budget -= attempt
            if not retry or budget <= 0:
                raise ClusterError(f"{self.addr} did not answer {msg.TYPE} in time")

    def _once(self, msg, data, timeout: float):
        self._rid += 1
        rid = self._rid
        send(self.sock, dataclasses.replace(msg, rid=rid), *data)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                got = recv(self.sock, min(left, PROBE_EVERY))
            except ProtocolError as exc:
                log.warning("dropped a bad reply from %s: %s", self.addr, exc)
                continue
            if got is None:
                self._check_refused()
                continue
            _, reply, rdata = got
            if reply.rid == rid:
                self.answered, self._refused_since = True, None
                return reply, rdata

    def _check_refused(self) -> None:
        """ZeroMQ hides a refused connection and retries forever; a direct TCP probe does not.

        A peer that never answered this client and refuses connections for
        ``REFUSED_GRACE`` seconds is reported at once rather than after the
        whole timeout (a dead NameNode or master named on the command line).
        """
        if self.answered or not tcp_refused(self.addr):
            self._refused_since = None
            return
        now = time.monotonic()
        self._refused_since = self._refused_since or now
        if now - self._refused_since >= REFUSED_GRACE:
            raise ClusterError(f"nothing listens at {self.addr} (connection refused)")

    def close(self) -> None:
        self.sock.close(0)
