"""What every ``mapred`` subcommand shares: one-line errors and daemon logging."""
from __future__ import annotations

import functools
import logging
import sys

import click

from mapred.errors import MapredError


def clean_errors(fn):
    """Turn a ``MapredError`` or an ``OSError`` into a one-line ``ClickException`` (exit status 1)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MapredError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or ''}: {exc.strerror}") from None
    return wrapper


def use_recorded_keys(addr: str) -> None:
    """Use the keys ``mapred cluster up`` recorded for ``addr`` unless keys or a secret are set.

    This is what keeps a keyed cluster's commands free of configuration: the
    user who started it is found by their own ``~/.mapred/clusters.json``.
    """
    import os
    if not addr or os.environ.get("MAPRED_KEYS") or os.environ.get("MAPRED_SECRET"):
        return
    if addr.startswith("mrfs://"):
        addr = "tcp://" + addr[len("mrfs://"):].split("/", 1)[0]
    from mapred.security.keys import recorded_keys
    found = recorded_keys(addr)
    if found is not None:
        os.environ["MAPRED_KEYS"], os.environ["MAPRED_PRINCIPAL"] = found


def daemon_logging(verbose: bool) -> None:
    """Log lines with time, pid and logger name on stderr, as every node process does."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")


def namenode_address(text: str) -> str:
    """``tcp://H:P`` from ``tcp://H:P``, ``mrfs://H:P[/...]`` (what ``cluster up`` prints) or ``H:P``."""
    text = (text or "").strip()
    if not text:
        return ""
    if text.startswith("mrfs://"):
        text = text[len("mrfs://"):].split("/", 1)[0]
    elif text.startswith("tcp://"):
        text = text[len("tcp://"):].rstrip("/")
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise click.ClickException(f"NameNode address {text!r} must look like tcp://host:port (or mrfs://host:port)")
    return f"tcp://{host}:{port}"


def namenode_option(ctx, param, value):
    """click callback: normalise a ``--namenode`` value with ``namenode_address``."""
    return namenode_address(value)
