"""Bearer tokens: made by ``mapred token create``, kept hashed in a file the service reads.

A token is ``mrt_<id>_<secret>``.  The file (JSON, mode 0600) maps each
``id`` to the SHA-256 of the whole token, its principal (user and role),
when it was made, when it expires, and whether it was revoked — never the
token itself, so a leaked file grants nothing.  The service re-reads the
file when it changes, so ``revoke`` takes effect at the next request.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass

from mapred.errors import ConfigError
from mapred.security.principals import Principal, Role

PREFIX = "mrt_"
_TOKEN = re.compile(r"^mrt_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TOKEN_ROLES = (Role.ADMIN, Role.USER)   # nodes authenticate with keys, not bearer tokens


class TokenRejected(Exception):
    """Why a presented token does not authenticate; ``reason`` is a short metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TokenRecord:
    id: str
    digest: str
    user: str
    role: str
    created: float
    expires: float | None
    revoked: bool = False

    def public(self) -> dict:
        """What ``token list`` shows: everything but the digest."""
        return {"id": self.id, "user": self.user, "role": self.role, "created": self.created,
                "expires": self.expires, "revoked": self.revoked}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_user(user: str) -> str:
    if not isinstance(user, str) or not _USER.match(user):
        raise ConfigError(f"user name {user!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return user


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``30s``, ``15m``, ``12h``, ``7d``; ConfigError on anything else."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not m:
        raise ConfigError(f"duration {text!r} is not like 90, 30s, 15m, 12h or 7d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


class TokenStore:
    """The token file: create, revoke, list (the CLI) and ``authenticate`` (the service)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._records: dict[str, TokenRecord] = {}

    # -- file ------------------------------------------------------------------------------------
    def _load(self) -> dict[str, TokenRecord]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._records = None, {}
            return self._records
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            try:
                with open(self.path, encoding="utf-8") as f:
                    raw = json.load(f)
                self._records = {k: TokenRecord(**v) for k, v in raw.get("tokens", {}).items()}
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigError(f"token file {self.path} is unreadable: {exc}") from None
            self._stamp = stamp
        return self._records

    def _save(self, records: dict[str, TokenRecord]) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"tokens": {k: vars(r) for k, r in records.items()}}, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
        self._stamp = None

    # -- CLI -------------------------------------------------------------------------------------
    def create(self, user: str, role: str | Role, expires_in: float | None = None,
               now: float | None = None) -> tuple[str, TokenRecord]:
        """A new token for ``user`` with ``role``; returns ``(token, record)`` — the only time it is shown."""
        check_user(user)
        try:
            role = Role(role)
        except ValueError:
            raise ConfigError(f"role {role!r} is not one of {', '.join(r.value for r in TOKEN_ROLES)}") from None
        if role not in TOKEN_ROLES:
            raise ConfigError(f"role {role.value!r} is for nodes (they use keys); tokens are for admin or user")
        if expires_in is not None and expires_in <= 0:
            raise ConfigError("a token's lifetime must be positive")
        now = time.time() if now is None else now
        with self._lock:
            records = dict(self._load())
            tid = secrets.token_hex(6)
            token = f"{PREFIX}{tid}_{secrets.token_urlsafe(32)}"
            rec = TokenRecord(tid, _digest(token), user, role.value, now,
                              None if expires_in is None else now + expires_in)
            records[tid] = rec
            self._save(records)
        return token, rec

    def revoke(self, token_or_id: str) -> TokenRecord:
        """Mark a token (given whole, or by its id) revoked; ConfigError if unknown."""
        m = _TOKEN.match(token_or_id)
        tid = m.group(1) if m else token_or_id
        with self._lock:
            records = dict(self._load())
            if tid not in records:
                raise ConfigError(f"no token with id {tid!r} in {self.path}")
            rec = records[tid] = TokenRecord(**{**vars(records[tid]), "revoked": True})
            self._save(records)
        return rec

    def list(self) -> list[TokenRecord]:
        with self._lock:
            return sorted(self._load().values(), key=lambda r: r.created)

    # -- service ---------------------------------------------------------------------------------
    def authenticate(self, token: str, now: float | None = None) -> Principal:
        """The principal ``token`` stands for, or ``TokenRejected`` saying why not."""
        m = _TOKEN.match(token or "")
        if not m:
            raise TokenRejected("malformed", "the bearer token is not a mapred token (mrt_...)")
        with self._lock:
            rec = self._load().get(m.group(1))     # one stat(); re-read only when the file changed
        if rec is None or not hmac.compare_digest(rec.digest, _digest(token)):
            raise TokenRejected("unknown", "the bearer token is not known")
        if rec.revoked:
            raise TokenRejected("revoked", f"token {rec.id} was revoked")
        if rec.expires is not None and (time.time() if now is None else now) >= rec.expires:
            raise TokenRejected("expired", f"token {rec.id} expired")
        return Principal(rec.user, Role(rec.role))
