"""CURVE keys and the authorized-keys list: a public key is an identity.

A key directory (``MAPRED_KEYS``) holds::

    server.key        the cluster's server key pair (every daemon's listening sockets); nodes only
    server.pub        its public half: what clients check the daemons by
    authorized_keys   one line per admitted key: "<public key> <principal> <role>"
    <name>.key        a principal's own key pair (a person's or a node's), mode 0600

A process runs as one principal (``MAPRED_PRINCIPAL``) and presents
``<name>.key`` when it connects; daemons admit a connection only if its
public key is in ``authorized_keys`` and then know its principal and role
(``transport`` turns the ZAP user id back into a ``Principal``).  Revoking
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

    def init(self) -> KeyPair:
        """Make the directory and the cluster's server key pair (kept if they exist)."""
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        if not os.path.exists(self.file(SERVER)):
            pair = KeyPair.generate()
            write_key(self.file(SERVER), pair, "mapred cluster server key: daemons only")
            write_key(os.path.join(self.path, "server.pub"), KeyPair(pair.public),
                      "mapred cluster server public key")
        return read_key(self.file(SERVER))

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

    def server_public(self) -> str:
        pub = os.path.join(self.path, "server.pub")
        if os.path.exists(pub):
            return read_key(pub).public
        return read_key(self.file(SERVER)).public

    def server_pair(self) -> KeyPair | None:
        """The server key pair, or None where this directory holds only the public half."""
        if not os.path.exists(self.file(SERVER)):
            return None
        pair = read_key(self.file(SERVER))
        return pair if pair.secret else None


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


def principal_name_of_user() -> str:
    """A principal name for the user running this process (their login, made safe)."""
    import getpass
    try:
        raw = getpass.getuser()
    except (KeyError, OSError):
        raw = "user"
    name = re.sub(r"[^A-Za-z0-9_.@-]", "-", raw).lstrip("_.@-")[:64] or "user"
    return name if name != SERVER else "server-user"
