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
