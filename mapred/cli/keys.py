"""``mapred keys gen|add|list|revoke``: the cluster's identities (docs/security.md).

A key directory (``--dir``, default ``$MAPRED_KEYS``) holds the cluster's
server key pair, ``authorized_keys`` and the principals' own key files.
``gen NAME --role ROLE`` makes a key pair and admits it; ``add PUBLIC NAME
--role ROLE`` admits a key made elsewhere (its owner keeps the secret half);
``revoke NAME-or-KEY`` removes it; ``list`` shows who is admitted.
"""
from __future__ import annotations

import os

import click

from mapred.cli.common import clean_errors
from mapred.errors import ConfigError
from mapred.security import keys as keymod
from mapred.security.principals import Principal

ROLES = click.Choice(["admin", "user", "worker", "datanode", "service"])


def _dir(path: str) -> keymod.KeyDir:
    path = path or os.environ.get("MAPRED_KEYS", "")
    if not path:
        raise ConfigError("no key directory: pass --dir or set MAPRED_KEYS")
    return keymod.KeyDir(path)


@click.group("keys")
def keys() -> None:
    """Manage principals: CURVE key pairs and the authorized-keys list."""


@keys.command("gen")
@click.argument("name")
@click.option("--role", type=ROLES, required=True, help="What the key may do.")
@click.option("--dir", "keydir", default="", help="Key directory (default $MAPRED_KEYS).")
@clean_errors
def gen(name: str, role: str, keydir: str) -> None:
    """Make a key pair for NAME, write NAME.key and admit it with ROLE."""
    d = _dir(keydir)
    if os.path.exists(d.file(name)):
        raise ConfigError(f"{d.file(name)} exists; revoke {name} first to replace its key")
    pair = d.generate(name, role)
    click.echo(f"{name} ({role}): {pair.public}  key file {d.file(name)}")


@keys.command("add")
@click.argument("public")
@click.argument("name")
@click.option("--role", type=ROLES, required=True, help="What the key may do.")
@click.option("--dir", "keydir", default="", help="Key directory (default $MAPRED_KEYS).")
@clean_errors
def add(public: str, name: str, role: str, keydir: str) -> None:
    """Admit PUBLIC (a Z85 public key made elsewhere) as NAME with ROLE."""
    d = _dir(keydir)
    d.init()
    keymod.add_authorized(d.authorized, keymod.check_public(public),
                          Principal(keymod.check_name(name), keymod.check_role(role)))
    click.echo(f"admitted {name} ({role})")


@keys.command("list")
@click.option("--dir", "keydir", default="", help="Key directory (default $MAPRED_KEYS).")
@clean_errors
def list_keys(keydir: str) -> None:
    """Show every admitted key: public key, principal, role."""
    d = _dir(keydir)
    for public, p in keymod.AuthorizedKeys(d.authorized).entries():
        click.echo(f"{public}  {p.name:<24} {p.role.value}")


@keys.command("revoke")
@click.argument("who")
@click.option("--dir", "keydir", default="", help="Key directory (default $MAPRED_KEYS).")
@clean_errors
def revoke(who: str, keydir: str) -> None:
    """Remove WHO (a principal name or a public key) from the authorized keys."""
    d = _dir(keydir)
    n = keymod.revoke_authorized(d.authorized, who)
    if not n:
        raise ConfigError(f"no admitted key belongs to {who!r}")
    key_file = d.file(who) if keymod._NAME.match(who) else ""
    if key_file and os.path.exists(key_file):
        os.remove(key_file)
    click.echo(f"revoked {n} key(s) of {who}; new connections with it are refused "
               "(restart daemons to cut connections already open)")


COMMANDS = [keys]
