"""Every ZeroMQ socket of mapred is made here, so security and hygiene are applied once.

``make_socket`` sets ``linger=0`` (a dead peer never blocks shutdown), a
maximum message size (``max_message_bytes``: ZeroMQ drops a peer that sends a
larger frame before allocating it), and CURVE encryption and authentication
in one of two keyed modes:

* **keys** (``MAPRED_KEYS`` + ``MAPRED_PRINCIPAL``, see ``security.keys``): a
  client presents its principal's own key pair and pins the public key the
  daemon at the address it connects to published (each daemon serves with its
  own pair, never a shared one); a daemon's ZAP handler admits only keys in the
  key directory's ``authorized_keys`` and labels each connection with
  ``name:role``, which ``recv_peer`` returns as the message's ``Principal``.
  Identity is the public key, never a routing id a peer chose.  A process with
  no keys configured that connects to a cluster this user started with
  ``mapred cluster up`` uses the keys recorded for it (``keys.keys_for``), so
  the default, keyed cluster needs no setting in the user's commands.
* **secret** (legacy ``MAPRED_SECRET``): keys derived from one shared secret;
  every holder is the single principal ``cluster`` with the admin role.

Without either, sockets are plain and every daemon listens on loopback only.

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
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from mapred import config as _config
from mapred.net import wire
from mapred.errors import ClusterError, ConfigError, ProtocolError
from mapred.security.keys import AuthorizedKeys, KeyDir
from mapred.security.policy import LEGACY
from mapred.security.principals import Principal, Role

log = logging.getLogger(__name__)

SERVER_KINDS = (zmq.ROUTER, zmq.REP, zmq.PUB, zmq.PULL)
_auth_lock = threading.Lock()
_authenticators: dict[int, object] = {}
_socket_secret: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_socket_keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # sock -> _KeyedEnd


@dataclasses.dataclass
class _KeyedEnd:
    """How one socket authenticates: ``mode`` and, in keys mode, its key dir and principal."""

    mode: str
    keydir: KeyDir | None
    principal: str
    explicit: bool          # the caller chose the mode (``secret=``): no address lookup
    server: bool


class _Socket(zmq.Socket):
    """A socket that pins the daemon key of the address it connects to (see ``_prepare_connect``)."""

    def connect(self, addr):
        _prepare_connect(self, addr)
        return super().connect(addr)


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


def credentials(secret: str | None = None) -> tuple[str, str, KeyDir | None, str]:
    """``(mode, secret, key dir, principal)``: mode ``"keys"``, ``"secret"`` or ``"none"``.

    An explicit ``secret`` (even ``""``) selects the legacy mode (or none);
    otherwise the configuration decides, keys before a shared secret.
    """
    if secret is not None:
        return ("secret" if secret else "none"), secret, None, ""
    cfg = _config.load()
    if cfg.keys:
        return "keys", "", KeyDir(cfg.keys), cfg.principal
    return ("secret" if cfg.secret else "none"), cfg.secret, None, ""


def make_socket(ctx: zmq.Context, kind: int, *, server: bool | None = None,
                secret: str | None = None, identity: bytes | None = None) -> zmq.Socket:
    """A socket of ``kind`` with linger 0, a message size cap and, when keyed, CURVE.

    ``server`` defaults to True for ROUTER/REP/PUB/PULL.  ``secret`` picks the
    legacy shared-secret mode explicitly; by default the configuration decides
    (see ``credentials``).
    """
    mode, key, keydir, principal = credentials(secret)
    is_server = kind in SERVER_KINDS if server is None else server
    pairs = _curve_keys(mode, key, keydir, principal, is_server)
    sock = ctx.socket(kind, socket_class=_Socket)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, max(1 << 20, _config.load().max_message_bytes))
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity)
    _socket_secret[sock] = mode != "none"   # remembered for the bind check
    _socket_keys[sock] = _KeyedEnd(mode, keydir, principal, secret is not None, is_server)
    if pairs is None:
        return sock
    public, private, server_public = pairs
    sock.curve_publickey, sock.curve_secretkey = public, private
    if is_server:
        _ensure_authenticator(ctx).admit(mode, key, keydir)
        sock.curve_server = True
    elif server_public is not None:
        sock.curve_serverkey = server_public
    return sock


def _curve_keys(mode, key, keydir, principal, is_server):
    """``(public, secret, server public or None)`` for a keyed socket, else None.

    In keys mode a server presents its own principal's pair (one per daemon);
    a client's server key is pinned per address when it connects.
    """
    if mode == "secret":
        if is_server:
            return (*derive_keys(key, "server"), None)
        return (*derive_keys(key, "client"), derive_keys(key, "server")[0])
    if mode != "keys":
        return None
    pair = keydir.own_pair(principal)
    return pair.public.encode(), pair.secret.encode(), None


def _prepare_connect(sock: zmq.Socket, addr: str) -> None:
    """Before ``sock`` connects to ``addr``: keys recorded for it, and the daemon key it must show.

    A socket made without credentials (and without an explicit ``secret``)
    takes the keys ``mapred cluster up`` recorded for ``addr``, if any.  In keys
    mode the daemon's public key for ``addr`` is pinned; an address with no
    published key is refused (it would otherwise be trusted on first use).
    """
    end = _socket_keys.get(sock)
    if end is None or end.server or not isinstance(addr, str):
        return
    if end.mode == "none" and not end.explicit:
        found = keys_for_addr(addr)
        if found is not None:
            end.mode, end.keydir, end.principal = "keys", KeyDir(found[0]), found[1]
            pair = end.keydir.own_pair(end.principal)
            sock.curve_publickey, sock.curve_secretkey = pair.public.encode(), pair.secret.encode()
            _socket_secret[sock] = True
    if end.mode != "keys":
        return
    server_key = end.keydir.daemon_key(addr)
    if server_key is None:
        raise ConfigError(f"no daemon key is known for {addr} in {end.keydir.daemons}: a daemon "
                          "publishes its key there when it starts (copy its line to this key "
                          "directory to reach it from elsewhere)")
    sock.curve_serverkey = server_key.encode()


def keys_for_addr(addr: str) -> tuple[str, str] | None:
    """``(key dir, principal)`` that ``mapred cluster up`` recorded for the cluster at ``addr``."""
    from mapred.security.keys import keys_for
    return keys_for(addr)


def publish_listener(sock: zmq.Socket, host: str, port: int) -> None:
    """A keyed daemon socket now listens at ``host:port``: publish its public key for clients."""
    end = _socket_keys.get(sock)
    if end is None or not end.server or end.mode != "keys":
        return
    from mapred.security.keys import listen_address
    end.keydir.publish_daemon(listen_address(host, port), end.keydir.own_pair(end.principal).public,
                              end.principal)


def _ensure_authenticator(ctx: zmq.Context) -> "_Gate":
    """One ZAP handler per context; the gate it consults learns each server socket's rules."""
    with _auth_lock:
        auth = _authenticators.get(id(ctx))
        if auth is None:
            auth = _Authenticator(ctx, log=logging.getLogger("mapred.zap"))
            auth.start()
            auth.configure_curve_callback(domain="*", credentials_provider=auth.gate)
            _authenticators[id(ctx)] = auth
        return auth.gate


class _Gate:
    """ZAP credentials provider: keys derived from admitted secrets, and authorized-keys files."""

    def __init__(self) -> None:
        self.legacy: dict[bytes, Principal] = {}
        self.keyrings: dict[str, AuthorizedKeys] = {}
        self.refused = 0          # connections turned away for an unknown or revoked key

    def admit(self, mode: str, secret: str, keydir: KeyDir | None) -> None:
        if mode == "secret":
            self.legacy[derive_keys(secret, "client")[0]] = LEGACY
        elif mode == "keys" and keydir.authorized not in self.keyrings:
            self.keyrings[keydir.authorized] = AuthorizedKeys(keydir.authorized)

    def principal(self, client_key: bytes) -> Principal | None:
        key = z85.encode(client_key) if len(client_key) == 32 else client_key
        found = self.legacy.get(key)
        for ring in list(self.keyrings.values()):
            if found is None:
                try:
                    found = ring.lookup(key.decode())
                except ConfigError as exc:   # a broken file admits nobody, loudly
                    log.error("authorized keys unusable: %s", exc)
        return found

    def callback(self, domain: str, client_key: bytes) -> bool:
        ok = self.principal(client_key) is not None
        if not ok:
            self.refused += 1
            log.warning("refused a CURVE client with an unknown key %s",
                        (z85.encode(client_key) if len(client_key) == 32 else client_key)[:12])
        return ok


class _Authenticator(ThreadAuthenticator):
    """pyzmq's ZAP thread, labelling each admitted connection ``name:role``."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.gate = _Gate()

    def curve_user_id(self, client_public_key: bytes) -> str:
        p = self.gate.principal(client_public_key)
        return f"{p.name}:{p.role.value}" if p is not None else ""


def peer_of(frame) -> Principal | None:
    """The principal ZAP labelled ``frame``'s connection with, or None (an unkeyed socket)."""
    try:
        user = frame.get("User-Id")
    except (zmq.ZMQError, AttributeError, KeyError, TypeError):
        return None
    if isinstance(user, bytes):
        user = user.decode("utf-8", "replace")
    name, sep, role = (user or "").rpartition(":")
    if not sep:
        return None
    try:
        return Principal(name, Role(role))
    except ValueError:
        return None


def zap_refusals(ctx: zmq.Context) -> dict[str, int]:
    """``{"unknown_key": n}``: connections the ZAP handler of ``ctx`` refused (for refusal counters)."""
    with _auth_lock:
        auth = _authenticators.get(id(ctx))
    n = auth.gate.refused if auth is not None else 0
    return {"unknown_key": n} if n else {}


def stop_authenticator(ctx: zmq.Context) -> None:
    """Stop the ZAP thread of ``ctx`` (call before ``ctx.term()``)."""
    with _auth_lock:
        auth = _authenticators.pop(id(ctx), None)
    if auth is not None:
        auth.stop()


def check_bind_host(host: str, secret) -> None:
    """Refuse to listen on a public address without credentials (keys or a secret)."""
    if not secret and not is_loopback(host):
        raise ConfigError(f"refusing to bind {host}: a non-loopback address needs keys "
                          "(MAPRED_KEYS, see `mapred keys`) or MAPRED_SECRET (CURVE) so that "
                          "strangers cannot talk to this node")


def has_credentials() -> bool:
    """Whether this process is configured with keys or a shared secret."""
    return credentials()[0] != "none"


def say_if_unkeyed(what: str) -> None:
    """A daemon without keys tells its operator what that means, once, at start."""
    if not has_credentials():
        log.warning("%s runs WITHOUT KEYS (insecure): it listens on loopback only and trusts every "
                    "local process -- any local user can register a DataNode or a worker, submit "
                    "job code and read or write any file. `mapred cluster up` runs keyed unless "
                    "--insecure; see docs/security.md", what)


def warn_if_open(addr: str, what: str) -> None:
    """Warn (once per call) when connecting to a non-loopback ``addr`` without credentials."""
    host = addr.split("://", 1)[-1].rsplit(":", 1)[0]
    if not is_loopback(host) and not has_credentials():
        log.warning("%s connects to %s without keys or a secret: traffic is neither "
                    "encrypted nor authenticated (set MAPRED_KEYS and MAPRED_PRINCIPAL)", what, addr)


_TCP_ADDR = re.compile(r"^tcp://[^:/\s]+:\d{1,5}$")


def check_tcp_addr(addr, what: str = "address") -> str:
    """``addr`` if it looks like ``tcp://host:port``, else a ConfigError naming it."""
    if not isinstance(addr, str) or not _TCP_ADDR.match(addr):
        raise ConfigError(f"{what} {addr!r} must look like tcp://host:port")
    return addr


def bind_random(sock: zmq.Socket, host: str = "127.0.0.1") -> int:
    """Bind ``sock`` to a free port on ``host`` and return the port."""
    check_bind_host(host, _socket_secret.get(sock, has_credentials()))
    port = sock.bind_to_random_port(f"tcp://{host}")
    publish_listener(sock, host, port)
    return port


def bind(sock: zmq.Socket, host: str = "127.0.0.1", port: int = 0) -> int:
    """Bind to ``host:port`` (0 = random) and return the port actually bound."""
    if not port:
        return bind_random(sock, host)
    check_bind_host(host, _socket_secret.get(sock, has_credentials()))
    try:
        sock.bind(f"tcp://{host}:{port}")
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot bind tcp://{host}:{port}: {exc}") from None
    publish_listener(sock, host, port)
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
    got = recv_peer(sock, timeout, routed)
    return None if got is None else got[:3]


def recv_peer(sock: zmq.Socket, timeout: float | None, routed: bool = False):
    """``(route, message, data, peer)``: ``recv`` plus the sender's ``Principal`` (see ``peer_of``)."""
    if timeout is not None and not sock.poll(int(timeout * 1000)):
        return None
    raw = sock.recv_multipart(copy=False)
    peer = peer_of(raw[0]) if raw else None
    frames = [f.buffer if len(f) >= 65536 else f.bytes for f in raw]
    route: list = []
    if routed:
        split = next((i for i, f in enumerate(frames) if bytes(f[:4]) == wire.VERSION), None)
        if split is None:
            raise ProtocolError("routed message without a version frame")
        route, frames = frames[:split], frames[split:]
    msg, data = wire.decode(frames)
    return route, msg, data, peer


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
