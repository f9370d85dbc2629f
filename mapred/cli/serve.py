"""``mapred serve`` (the HTTP service) and ``mapred token create|list|revoke`` (its bearer tokens).

The service binds its socket itself, before uvicorn starts, so ``--port 0``
(and ``--any-port`` when the asked port is busy) can report the port it got
in ``--ready-file``; the file is written once the app has started, so a
reader of it can connect at once.
"""
from __future__ import annotations

import ipaddress
import os
import socket

import click

from mapred.cli.common import clean_errors as _clean
from mapred.cli.common import daemon_logging as _daemon_logging

# Idle connections are kept well past the pool expiry of common clients (httpx: 5 s, aiohttp: 15 s):
# a server that closes first races the client's next request on that connection, and the client
# sees "server disconnected" instead of an answer.
KEEP_ALIVE_S = 30.0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_implementation() -> tuple[str, str]:
    """uvicorn's ``(loop, http)``: uvloop and httptools (C, installed with mapred) when importable.

    uvloop's transport cuts the service's CPU per byte streamed by OPEN by
    about a third against asyncio's pure-Python one (benchmarks/service.py
    prints it); httptools parses requests in C.  Without them (a platform
    with no wheel) uvicorn's pure-Python pair serves the same requests.
    ``MAPRED_SERVICE_LOOP`` (``asyncio``) and ``MAPRED_SERVICE_HTTP`` (``h11``)
    choose the pure-Python ones anyway (to compare, or to rule them out).
    """
    import importlib.util
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return os.environ.get("MAPRED_SERVICE_LOOP") or loop, os.environ.get("MAPRED_SERVICE_HTTP") or http


def bind(host: str, port: int, any_port: bool) -> socket.socket:
    """A listening TCP socket on ``host:port`` (a random port if busy and ``any_port``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in ([port, 0] if any_port and port else [port]):
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if candidate == 0 or not any_port:
                raise click.ClickException(f"cannot listen on {host}:{candidate}: {exc.strerror}") from None
            continue
        sock.listen(1024)
        return sock
    raise AssertionError("unreachable")


@click.command("serve")
@click.option("--namenode", default="", envvar="MAPRED_NAMENODE", help="tcp://H:P of the block store")
@click.option("--master", "master_addr", default="", envvar="MAPRED_MASTER", help="tcp://H:P of the master")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535), help="0 = random")
@click.option("--any-port", is_flag=True, help="take a random port if --port is busy")
@click.option("--public", is_flag=True, help="allow a non-loopback --host (put TLS in front of it)")
@click.option("--token-file", default="", envvar="MAPRED_TOKEN_FILE", help="tokens made by `mapred token`")
@click.option("--ready-file", default="", help="write the service's URL here once it serves")
@click.option("--router", "routers", multiple=True, envvar="MAPRED_SERVICE_ROUTERS",
              help="extra router module to mount (repeatable)")
@click.option("--max-body", default=16 << 30, show_default=True, type=click.IntRange(1),
              envvar="MAPRED_SERVICE_MAX_BODY",
              help="bytes; larger request bodies get 413")
@click.option("--max-in-flight", default=64, show_default=True, type=click.IntRange(1),
              envvar="MAPRED_SERVICE_MAX_IN_FLIGHT",
              help="concurrent requests; more get 503 + Retry-After")
@click.option("--body-timeout", default=30.0, show_default=True, type=click.FloatRange(0.1),
              envvar="MAPRED_SERVICE_BODY_TIMEOUT",
              help="seconds a request body may stall before 408")
@click.option("--keep-alive", default=KEEP_ALIVE_S, show_default=True, type=click.FloatRange(1),
              envvar="MAPRED_SERVICE_KEEP_ALIVE",
              help="seconds an idle connection is kept open (longer than clients' pool expiry)")
@click.option("--redirect-base", default="", help="where WebHDFS data steps are redirected (default: here)")
@click.option("-v", "--verbose", is_flag=True, help="Log every request (and debug messages).")
@_clean
def serve(namenode, master_addr, host, port, any_port, public, token_file, ready_file, routers, max_body,
          max_in_flight, body_timeout, keep_alive, redirect_base, verbose):
    """Run the HTTP service: WebHDFS, jobs and results, metrics and the status page."""
    import uvicorn

    from mapred.config import load
    from mapred.service.app import create_app
    from mapred.service.settings import ServiceSettings, default_token_file
    if not _loopback(host) and not public:
        raise click.ClickException(f"refusing to listen on {host}: pass --public to serve beyond this "
                                   "machine (and put TLS in front of it: tokens travel in every request)")
    _daemon_logging(verbose)
    from mapred.storage.malloc import keep_read_buffers
    keep_read_buffers()            # OPEN's read-ahead pieces reuse their pages (docs/service.md)
    routers = tuple(r.strip() for item in routers for r in item.split(",") if r.strip())
    sock = bind(host, port, any_port)
    bound = sock.getsockname()[1]
    settings = ServiceSettings(namenode=namenode, master=master_addr, host=host, port=bound,
                               token_file=token_file or default_token_file(), secret=load().secret,
                               max_body_bytes=max_body, max_in_flight=max_in_flight, body_timeout_s=body_timeout,
                               redirect_base=redirect_base, routers=routers)
    app = create_app(settings)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}"

    def announce() -> None:
        if ready_file:
            with open(ready_file + ".tmp", "w") as f:
                f.write(url + "\n")
            os.replace(ready_file + ".tmp", ready_file)
        click.echo(f"mapred service at {url} (tokens in {settings.token_file})", err=True)
    app.router.on_startup.append(announce)
    loop, http = server_implementation()
    config = uvicorn.Config(app, log_level="debug" if verbose else "warning", access_log=verbose,
                            timeout_keep_alive=keep_alive, lifespan="on", loop=loop, http=http)
    uvicorn.Server(config).run(sockets=[sock])


@click.group("token")
@click.option("--token-file", default="", envvar="MAPRED_TOKEN_FILE", help="default: ~/.mapred/tokens.json")
@click.pass_context
def token(ctx, token_file):
    """Make, list and revoke the service's bearer tokens."""
    from mapred.service.settings import default_token_file
    from mapred.service.tokens import TokenStore
    ctx.obj = TokenStore(token_file or default_token_file())


@token.command("create")
@click.option("--user", required=True, help="the principal's name")
@click.option("--role", default="user", show_default=True, type=click.Choice(["admin", "user"]),
              help="What the token may do: a user sees their own jobs and files, an admin everything.")
@click.option("--expires", default="", help="lifetime such as 3600, 30m, 12h, 7d (default: never)")
@click.pass_obj
@_clean
def token_create(store, user, role, expires):
    """Print a new token for USER (shown once; only its hash is kept)."""
    from mapred.service.tokens import parse_duration
    tok, rec = store.create(user, role, parse_duration(expires) if expires else None)
    click.echo(tok)
    click.echo(f"token {rec.id} for {user} ({role}) stored hashed in {store.path}", err=True)


@token.command("list")
@click.pass_obj
@_clean
def token_list(store):
    """Every token's id, user, role, expiry and whether it is revoked (never the token)."""
    import time
    for rec in store.list():
        exp = "never" if rec.expires is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(rec.expires))
        state = "revoked" if rec.revoked else ("expired" if rec.expires and rec.expires < time.time() else "active")
        click.echo(f"{rec.id}  {rec.user:<16} {rec.role:<6} expires {exp:<19}  {state}")


@token.command("revoke")
@click.argument("token_or_id")
@click.pass_obj
@_clean
def token_revoke(store, token_or_id):
    """Revoke a token (give the token or its id); the service refuses it from the next request."""
    rec = store.revoke(token_or_id)
    click.echo(f"revoked token {rec.id} of {rec.user}")


COMMANDS = [serve, token]
