"""CURVE keys and the authorized-keys list: a public key is an identity.

A key directory (``MAPRED_KEYS``) holds::

    authorized_keys   one line per admitted key: "<public key> <principal> <role>"
    <name>.key        a principal's own key pair (a person's or a node's), mode 0600
    daemons           one line per listening daemon: "<tcp://host:port> <public key> <principal>"

A process runs as one principal (``MAPRED_PRINCIPAL``) and presents
``<name>.key`` when it connects; daemons admit a connection only if its
public key is in ``authorized_keys`` and then know its principal and role
(``transport`` turns the ZAP user id back into a ``Principal``).

Every daemon serves with its own key pair (its principal's), never a shared
one, and publishes the address it listens on with its public key in
``daemons`` when it binds.  A client pins the key listed for the address it
connects to (as ssh's ``known_hosts``): a stolen DataNode key can pose as
that DataNode only, not as the NameNode or the master.  Revoking
removes the line; daemons reread the file when it changes, so the key can no
longer connect (connections already open stay until they close: restart the
daemons for an immediate cut).

Keys are Z85 text (40 characters), as ZeroMQ's own certificate files use.
"""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass

import zmq

from mapred.errors import ConfigError
from mapred.security.principals import Principal, Role

SERVER = "server"
AUTHORIZED = "authorized_keys"
DAEMONS = "daemons"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_Z85 = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair in Z85 text; ``secret`` is empty for a public-only file."""

    public: str
    secret: str = ""

    @classmethod
    def generate(cls) -> "KeyPair":
        public, secret = zmq.curve_keypair()
        return cls(public.decode(), secret.decode())


def check_name(name: str) -> str:
    """``name`` if it can be a principal name (letters, digits, ``_.@-``; at most 64)."""
    if not isinstance(name, str) or not _NAME.match(name) or name == SERVER:
        raise ConfigError(f"principal name {name!r} must be 1-64 letters, digits or _.@- "
                          f"(and not {SERVER!r})")
    return name


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ConfigError(f"role {role!r} is not one of {', '.join(r.value for r in Role)}") from None


def check_public(key: str) -> str:
    if not isinstance(key, str) or not _Z85.match(key):
        raise ConfigError(f"{key!r:.60} is not a Z85 CURVE public key (40 characters)")
    return key


# -- key files --------------------------------------------------------------------------------


def write_key(path: str, pair: KeyPair, comment: str = "") -> None:
    """Write a key file (mode 0600 when it holds a secret half), atomically."""
    lines = [f"# {comment}"] if comment else []
    lines.append(f"public = {pair.public}")
    if pair.secret:
        lines.append(f"secret = {pair.secret}")
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if pair.secret else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def read_key(path: str) -> KeyPair:
    """A key file's pair; ``ConfigError`` naming the file if it is missing or malformed."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    try:
        pair = KeyPair(check_public(values.get("public", "")), values.get("secret", ""))
    except ConfigError as exc:
        raise ConfigError(f"key file {path}: {exc}") from None
    if pair.secret and zmq.curve_public(pair.secret.encode()).decode() != pair.public:
        raise ConfigError(f"key file {path}: the secret half does not match the public half")
    return pair


# -- the authorized-keys list -----------------------------------------------------------------


class AuthorizedKeys:
    """``public key -> Principal`` from an authorized-keys file, reread when it changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple | None = None
        self._by_key: dict[str, Principal] = {}
        self._lock = threading.Lock()

    def _load(self) -> None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        self._by_key = dict(parse_authorized(self.path)) if stamp is not None else {}
        self._stamp = stamp

    def lookup(self, public: str) -> Principal | None:
        with self._lock:
            self._load()
            return self._by_key.get(public)

    def entries(self) -> list[tuple[str, Principal]]:
        with self._lock:
            self._load()
            return sorted(self._by_key.items(), key=lambda kv: (kv[1].name, kv[0]))


def parse_authorized(path: str):
    """Yield ``(public, Principal)`` of each well-formed line; a malformed line is a ConfigError."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):   # Z85 keys may contain '#': whole-line comments only
                continue
            parts = line.split()
            try:
                if len(parts) != 3:
                    raise ConfigError("expected '<public key> <principal> <role>'")
                yield check_public(parts[0]), Principal(check_name(parts[1]), check_role(parts[2]))
            except ConfigError as exc:
                raise ConfigError(f"{path} line {n}: {exc}") from None


def add_authorized(path: str, public: str, principal: Principal) -> None:
    """Admit ``public`` as ``principal`` (replacing any line for the same key)."""
    check_public(public)
    check_name(principal.name)
    entries = [(k, p) for k, p in (parse_authorized(path) if os.path.exists(path) else [])
               if k != public]
    entries.append((public, principal))
    _write_authorized(path, entries)


def revoke_authorized(path: str, who: str) -> int:
    """Remove every line whose principal name or public key is ``who``; return how many."""
    if not os.path.exists(path):
        return 0
    entries = list(parse_authorized(path))
    kept = [(k, p) for k, p in entries if who not in (k, p.name)]
    _write_authorized(path, kept)
    return len(entries) - len(kept)


def _write_authorized(path: str, entries) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write("# public-key principal role   (managed by `mapred keys`)\n")
        for public, p in entries:
            f.write(f"{public} {p.name} {p.role.value}\n")
    os.replace(tmp, path)


# -- a key directory --------------------------------------------------------------------------


class KeyDir:
    """The files of one key directory (see the module doc)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    def file(self, name: str) -> str:
        return os.path.join(self.path, f"{name}.key")

    @property
    def authorized(self) -> str:
        return os.path.join(self.path, AUTHORIZED)

    @property
    def daemons(self) -> str:
        return os.path.join(self.path, DAEMONS)

    def init(self) -> None:
        """Make the directory (mode 0700) if it is not there."""
        os.makedirs(self.path, mode=0o700, exist_ok=True)

    def generate(self, name: str, role: Role | str) -> KeyPair:
        """A new key pair for ``name``, written to ``<name>.key`` and admitted with ``role``."""
        check_name(name)
        role = check_role(role if isinstance(role, str) else role.value)
        self.init()
        pair = KeyPair.generate()
        write_key(self.file(name), pair, f"mapred key of {name} ({role.value})")
        add_authorized(self.authorized, pair.public, Principal(name, role))
        return pair

    def ensure(self, name: str, role: Role | str) -> str:
        """``name``'s key file, made and admitted with ``role`` unless it exists; its path."""
        if not os.path.exists(self.file(name)):
            self.generate(name, role)
        return self.file(name)

    def own_pair(self, principal: str) -> KeyPair:
        """``principal``'s key pair (with its secret half); ``ConfigError`` naming what is wrong."""
        if not principal:
            raise ConfigError(f"MAPRED_KEYS is {self.path} but MAPRED_PRINCIPAL is not set: "
                              "say which key of the directory is yours")
        pair = read_key(self.file(principal))
        if not pair.secret:
            raise ConfigError(f"key file {self.file(principal)} has no secret half")
        return pair

    def publish_daemon(self, addr: str, public: str, principal: str) -> None:
        """Record that the daemon listening at ``addr`` serves with ``public`` (replacing the old line)."""
        import fcntl
        self.init()
        with open(os.path.join(self.path, ".daemons.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)     # daemons of one cluster start at the same moment
            rows = [r for r in _parse_daemons(self.daemons) if r[0] != addr]
            rows.append((addr, check_public(public), check_name(principal)))
            tmp = f"{self.daemons}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write("# address public-key principal   (written by each daemon when it listens)\n")
                f.writelines(f"{a} {k} {n}\n" for a, k, n in rows)
            os.replace(tmp, self.daemons)

    def daemon_key(self, addr: str) -> str | None:
        """The public key the daemon at ``addr`` published (a wildcard bind matches any host)."""
        return _daemon_table(self.daemons).get(addr) or _daemon_table(self.daemons).get(_wildcard(addr))


def _parse_daemons(path: str) -> list[tuple[str, str, str]]:
    rows = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return rows
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#") and _Z85.match(parts[1]):
            rows.append((parts[0], parts[1], parts[2]))
    return rows


_daemon_cache: dict[str, tuple] = {}


def _daemon_table(path: str) -> dict[str, str]:
    """``{address: public key}`` of a daemons file, reread only when it changes."""
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        return {}
    cached = _daemon_cache.get(path)
    if cached is None or cached[0] != stamp:
        cached = _daemon_cache[path] = (stamp, {a: k for a, k, _ in _parse_daemons(path)})
    return cached[1]


def _wildcard(addr: str) -> str:
    return "tcp://*:" + addr.rsplit(":", 1)[-1]


def listen_address(host: str, port: int) -> str:
    """The ``daemons`` name of a listening socket: ``tcp://*:PORT`` for a wildcard bind."""
    wild = host in ("*", "0.0.0.0", "::", "[::]", "")
    return f"tcp://*:{port}" if wild else f"tcp://{host}:{port}"


# -- clusters this user started: address -> which keys to use ----------------------------------


def _registry() -> str:
    home = os.environ.get("MAPRED_HOME") or os.path.join(os.path.expanduser("~"), ".mapred")
    return os.path.join(home, "clusters.json")


def _read_registry() -> dict:
    try:
        with open(_registry()) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_registry(data: dict) -> None:
    path = _registry()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def record_cluster(addrs: list[str], keydir: str, principal: str) -> None:
    """Remember that ``addrs`` (tcp://host:port) speak with ``keydir``, as ``principal``.

    ``mapred cluster up`` records its master and NameNode here (in the user's
    own ``~/.mapred``, or ``$MAPRED_HOME``), so the user's later commands find
    their key without any setting.
    """
    data = _read_registry()
    for addr in addrs:
        if addr:
            data[addr] = {"keys": keydir, "principal": principal}
    _write_registry(data)


def forget_cluster(addrs: list[str]) -> None:
    data = _read_registry()
    if any(a in data for a in addrs):
        _write_registry({k: v for k, v in data.items() if k not in addrs})


def recorded_keys(addr: str) -> tuple[str, str] | None:
    """``(key dir, principal)`` recorded for ``addr`` if its key file is still there."""
    entry = _read_registry().get(addr)
    if not isinstance(entry, dict):
        return None
    keydir, principal = str(entry.get("keys", "")), str(entry.get("principal", ""))
    if keydir and principal and os.path.exists(KeyDir(keydir).file(principal)):
        return keydir, principal
    return None


def keys_for(addr: str) -> tuple[str, str] | None:
    """``(key dir, principal)`` to reach ``addr`` with, from the clusters this user started.

    The master and NameNode are recorded by ``cluster up``; any other daemon
    of such a cluster (a DataNode, a worker's shuffle server) is found in the
    recorded key directory's ``daemons`` file.  None: not a recorded cluster.
    """
    found = recorded_keys(addr)
    if found is not None:
        return found
    seen = set()
    for entry in _read_registry().values():
        if not isinstance(entry, dict):
            continue
        keydir, principal = str(entry.get("keys", "")), str(entry.get("principal", ""))
        if not keydir or (keydir, principal) in seen:
            continue
        seen.add((keydir, principal))
        kd = KeyDir(keydir)
        if kd.daemon_key(addr) and os.path.exists(kd.file(principal)):
            return keydir, principal
    return None


def principal_name_of_user() -> str:
    """A principal name for the user running this process (their login, made safe)."""
    import getpass
    try:
        raw = getpass.getuser()
    except (KeyError, OSError):
        raw = "user"
    name = re.sub(r"[^A-Za-z0-9_.@-]", "-", raw).lstrip("_.@-")[:64] or "user"
    return name if name != SERVER else "server-user"
