"""Token rules: the file keeps hashes only; unknown, revoked, expired and malformed tokens are refused."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from mapred.cli import main
from mapred.errors import ConfigError
from mapred.security.principals import Principal, Role
from mapred.service.tokens import TokenRejected, TokenStore, parse_duration


def test_create_then_authenticate_and_only_hash_stored(tmp_path):
    store = TokenStore(str(tmp_path / "t.json"))
    tok, rec = store.create("alice", "user")
    assert store.authenticate(tok) == Principal("alice", Role.USER)
    raw = (tmp_path / "t.json").read_text()
    assert tok not in raw and tok.split("_")[-1] not in raw
    assert json.loads(raw)["tokens"][rec.id]["user"] == "alice"
    assert oct(os.stat(tmp_path / "t.json").st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("bad", ["", "Bearer x", "mrt_zz_short", "mrt_0123456789ab_" + "x" * 43])
def test_malformed_or_unknown_refused(tmp_path, bad):
    store = TokenStore(str(tmp_path / "t.json"))
    store.create("alice", "user")
    with pytest.raises(TokenRejected) as e:
        store.authenticate(bad)
    assert e.value.reason in ("malformed", "unknown")


def test_tampered_token_with_known_id_refused(tmp_path):
    store = TokenStore(str(tmp_path / "t.json"))
    tok, _ = store.create("alice", "admin")
    with pytest.raises(TokenRejected, match="not known"):
        store.authenticate(tok[:-1] + ("A" if tok[-1] != "A" else "B"))


def test_revoked_and_expired(tmp_path):
    store = TokenStore(str(tmp_path / "t.json"))
    tok, rec = store.create("bob", "user", expires_in=60, now=1000.0)
    assert store.authenticate(tok, now=1059.0).name == "bob"
    with pytest.raises(TokenRejected, match="expired"):
        store.authenticate(tok, now=1060.0)
    tok2, rec2 = store.create("bob", "user")
    other = TokenStore(str(tmp_path / "t.json"))       # another process revokes it
    other.revoke(rec2.id)
    with pytest.raises(TokenRejected, match="revoked"):
        store.authenticate(tok2)


def test_bad_roles_users_durations(tmp_path):
    store = TokenStore(str(tmp_path / "t.json"))
    with pytest.raises(ConfigError, match="for nodes"):
        store.create("w1", "worker")
    with pytest.raises(ConfigError, match="role"):
        store.create("x", "root")
    with pytest.raises(ConfigError, match="user name"):
        store.create("../etc", "user")
    with pytest.raises(ConfigError, match="no token"):
        store.revoke("feedfeedfeed")
    assert parse_duration("2h") == 7200 and parse_duration("90") == 90
    with pytest.raises(ConfigError, match="duration"):
        parse_duration("soon")


def test_token_cli(tmp_path):
    path = str(tmp_path / "t.json")
    r = CliRunner().invoke(main, ["token", "--token-file", path, "create", "--user", "carol", "--expires", "1d"])
    assert r.exit_code == 0, r.output
    tok = r.stdout.strip().splitlines()[0]
    assert TokenStore(path).authenticate(tok).name == "carol"
    r = CliRunner().invoke(main, ["token", "--token-file", path, "list"])
    assert "carol" in r.output and "active" in r.output and tok not in r.output
    r = CliRunner().invoke(main, ["token", "--token-file", path, "revoke", tok])
    assert r.exit_code == 0 and "revoked" in r.output
    assert "revoked" in CliRunner().invoke(main, ["token", "--token-file", path, "list"]).output
    r = CliRunner().invoke(main, ["token", "--token-file", path, "create", "--user", "d", "--expires", "whenever"])
    assert r.exit_code != 0 and "duration" in r.output
