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
