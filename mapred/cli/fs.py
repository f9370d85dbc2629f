"""``mapred namenode``, ``mapred datanode`` and ``mapred fs ...``.

Every store error becomes a one-line ``ClickException`` (exit status 1), never
a traceback: the message names the path, block or node at fault.
"""
from __future__ import annotations

import json
import sys
import time

import click

from mapred import config as _config
from mapred.cli.common import clean_errors as _clean, daemon_logging as _daemon_logging, namenode_address, namenode_option
from mapred.storage.permissions import describe

GiB = 1024 ** 3



@click.command("namenode")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False), help="journal and image")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="0 = random")
@click.option("--replication", type=click.IntRange(1, 32), help="default replication")
@click.option("--block-size", type=click.IntRange(1), help="default block size in bytes")
@click.option("--dead-timeout", type=click.FloatRange(0.1), help="seconds before a DataNode is dead")
@click.option("--safemode-threshold", type=click.FloatRange(0, 1),
              help="fraction of blocks that must be reported before safe mode ends at start-up")
@click.option("--checkpoint-every", default=10000, show_default=True, help="edits per checkpoint")
@click.option("--ready-file", default="", help="write the bound address here once serving")
@click.option("--cleanup-rules", default="", type=click.Path(dir_okay=False),
              help="retention rules (TOML or JSON); run every rules interval (default 10 min)")
@click.option("--trash-interval", default="24h", show_default=True,
              help="how long `fs rm` keeps a path in the trash (0 = no trash)")
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
@_clean
def namenode(data_dir, host, port, replication, block_size, dead_timeout, safemode_threshold,
             checkpoint_every, ready_file, cleanup_rules, trash_interval, verbose):
    """Run the NameNode: the namespace, the block map, the replication monitor and cleanup."""
    from mapred.storage.cleanup import duration
    from mapred.storage.namenode import Settings, run
    cfg = _config.load(replication=replication, block_size=block_size, dead_timeout=dead_timeout,
                       safemode_threshold=safemode_threshold)
    _daemon_logging(verbose)
    settings = Settings(replication=cfg.replication, block_size=cfg.block_size,
                        dead_timeout=cfg.dead_timeout, safemode_threshold=cfg.safemode_threshold,
                        copy_timeout=min(30.0, max(5.0, 3 * cfg.dead_timeout)),
                        trash_interval=duration(trash_interval, "--trash-interval"))
    run(data_dir, host, port, settings, ready_file=ready_file, checkpoint_every=checkpoint_every,
        cleanup_rules=cleanup_rules)


@click.command("datanode")
@click.option("--namenode", "nn", envvar="MAPRED_NAMENODE", required=True, callback=namenode_option,
              help="tcp://host:port or mrfs://host:port of the NameNode (or MAPRED_NAMENODE)")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False), help="block files go here")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on for block traffic")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="0 = random")
@click.option("--heartbeat", type=click.FloatRange(0.05), help="seconds between heartbeats")
@click.option("--report-interval", default=60.0, show_default=True, help="seconds between block reports")
@click.option("--scan-interval", default=300.0, show_default=True, help="seconds per scanner pass")
@click.option("--sync/--no-sync", default=False, show_default=True, help="fsync each finished block")
@click.option("--ready-file", default="", help="write the bound address here once serving")
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
@_clean
def datanode(nn, data_dir, host, port, heartbeat, report_interval, scan_interval, sync, ready_file,
             verbose):
    """Run a DataNode: checksummed block files, served and received over ZeroMQ."""
    from mapred.storage.datanode import run
    cfg = _config.load()
    _daemon_logging(verbose)
    run(nn, data_dir, host, port, ready_file=ready_file, heartbeat=heartbeat or cfg.heartbeat_interval,
        report_interval=report_interval, scan_interval=scan_interval, sync=sync)


@click.group("fs")
@click.option("--namenode", "nn", envvar="MAPRED_NAMENODE", default="", callback=namenode_option,
              help="tcp://host:port or mrfs://host:port of the NameNode (or MAPRED_NAMENODE); "
                   "an mrfs://HOST:PORT/path argument always goes to its own HOST:PORT")
@click.pass_context
def fs(ctx, nn):
    """Use the block store: put, get, ls, cat, rm, expunge, mkdir, mv, stat, du, setrep, fsck, report,
    safemode, decommission, balance."""
    ctx.obj = {"nn": nn}


def _client(path: str = "", *others: str):
    """A Client for the NameNode an ``mrfs://HOST:PORT/path`` names, else for --namenode.

    A URI's authority always wins over --namenode / MAPRED_NAMENODE (as a
    Hadoop path's does over fs.defaultFS): sending it elsewhere would act on
    the wrong store.  Paths of one command naming two NameNodes are refused.
    """
    from mapred.cli.common import use_recorded_keys
    from mapred.storage.client import Client
    nn = (click.get_current_context().find_object(dict) or {}).get("nn", "")
    named = {namenode_address(p) for p in (path, *others) if p.startswith("mrfs://")}
    if len(named) > 1:
        raise click.ClickException(f"the paths name different NameNodes ({', '.join(sorted(named))}); "
                                   "copy between stores with get and put")
    if named:
        nn = named.pop()
    if not nn:
        raise click.ClickException("no NameNode: pass --namenode tcp://host:port or set MAPRED_NAMENODE")
    use_recorded_keys(nn)
    return Client(nn)


def _path(path: str) -> str:
    if path.startswith("mrfs://"):
        rest = path[len("mrfs://"):]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return path


@fs.command("put")
@click.argument("local", type=click.Path(exists=True, dir_okay=False))
@click.argument("remote")
@click.option("-f", "--overwrite", is_flag=True, help="replace REMOTE if it exists")
@click.option("--replication", type=click.IntRange(1, 32), help="copies of each block (default: the NameNode's)")
@click.option("--block-size", type=click.IntRange(1), help="bytes per block (default: the NameNode's)")
@_clean
def put(local, remote, overwrite, replication, block_size):
    """Copy a local file into the store."""
    with _client(remote) as c:
        n = c.put(local, _path(remote), overwrite=overwrite, replication=replication or 0,
                  block_size=block_size or 0)
    click.echo(f"put {n} bytes to {remote}")


@fs.command("get")
@click.argument("remote")
@click.argument("local", type=click.Path(dir_okay=False))
@_clean
def get(remote, local):
    """Copy a stored file to a local path."""
    from mapred.storage.malloc import keep_read_buffers
    keep_read_buffers()            # as the service does for OPEN: read-ahead pieces reuse their pages
    with _client(remote) as c:
        n = c.get(_path(remote), local)
    click.echo(f"got {n} bytes into {local}")


BINARY_FORMATS = ("parquet", "avro", "seq", "records")


def _uri(remote: str) -> str:
    """The mrfs:// URI of a path given either way (``/a/b`` with --namenode, or a URI)."""
    if remote.startswith("mrfs://"):
        return remote
    nn = (click.get_current_context().find_object(dict) or {}).get("nn", "")
    if not nn:
        raise click.ClickException("no NameNode: pass --namenode tcp://host:port or set MAPRED_NAMENODE")
    return "mrfs://" + nn.split("://", 1)[-1] + _path(remote)


def _json_records(uri: str, limit: int | None) -> None:
    """Print a binary file's records as JSON lines (``hadoop fs -text``): at most ``limit`` of them."""
    import itertools

    from mapred.formats import infer
    from mapred.formats.base import json_line
    fmt = infer(uri)
    if fmt == "records":
        from mapred.io.outputs import read_part
        pairs = read_part(uri)
    else:
        from mapred.formats import read_file
        pairs = read_file(uri, fmt)
    for key, record in itertools.islice(pairs, limit):
        click.echo(json_line({"key": key, "value": record} if fmt in ("seq", "records") else record))


@fs.command("cat")
@click.argument("remote")
@click.option("--raw", is_flag=True, help="the bytes as stored, even of a binary format")
@_clean
def cat(remote, raw):
    """Write a stored file to stdout; Parquet, Avro, sequence and record files print as JSON lines."""
    from mapred.formats import infer
    if not raw and infer(remote) in BINARY_FORMATS:
        _json_records(_uri(remote), None)
        return
    out = sys.stdout.buffer
    with _client(remote) as c, c.open(_path(remote)) as f:
        while True:
            piece = f.read(1 << 20)
            if not piece:
                break
            out.write(piece)
    out.flush()


@fs.command("head")
@click.argument("remote")
@click.option("-n", "--lines", "count", type=click.IntRange(min=0), default=10, show_default=True,
              help="lines (or records of a binary format) to show")
@_clean
def head(remote, count):
    """The first lines of a stored file; of a binary format, its first records as JSON lines."""
    from mapred.formats import infer
    if infer(remote) in BINARY_FORMATS:
        _json_records(_uri(remote), count)
        return
    out = sys.stdout.buffer
    with _client(remote) as c, c.open(_path(remote)) as f:
        for _ in range(count):
            line = f.readline()
            if not line:
                break
            out.write(line)
    out.flush()


@fs.command("ls")
@click.argument("remote", default="/")
@_clean
def ls(remote):
    """List a directory (or show one file)."""
    with _client(remote) as c:
        for e in c.ls(_path(remote)):
            kind = "d" if e["type"] == "dir" else "-"
            rep = e.get("replication", "-")
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["mtime"]))
            bits = describe(e.get("mode", 0)) or "rwxrwxrwx"   # no owner recorded: open to all
            owner = e.get("owner") or "-"
            click.echo(f"{kind}{bits} {owner:<12} {rep:>2} {e['length']:>14} {when} {e['path']}")


@fs.command("chmod")
@click.argument("mode")
@click.argument("remote")
@_clean
def chmod(mode, remote):
    """Set a path's permission bits (octal, e.g. 600: only you may read and write it)."""
    try:
        bits = int(mode, 8)
    except ValueError:
        raise click.BadParameter(f"{mode!r} is not an octal mode such as 600 or 755") from None
    with _client(remote) as c:
        c.chmod(_path(remote), bits)


@fs.command("chown")
@click.argument("owner")
@click.argument("remote")
@_clean
def chown(owner, remote):
    """Give a path to another principal (admins only)."""
    with _client(remote) as c:
        c.chmod(_path(remote), owner=owner)


@fs.command("mkdir")
@click.argument("remote")
@click.option("-p", "--parents", is_flag=True, help="create missing parents; no error if it exists")
@_clean
def mkdir(remote, parents):
    """Make a directory."""
    with _client(remote) as c:
        c.mkdir(_path(remote), parents=parents)


@fs.command("rm")
@click.argument("remote")
@click.option("-r", "--recursive", is_flag=True, help="delete a directory and everything under it")
@click.option("--skip-trash", is_flag=True, help="delete at once instead of moving to the trash")
@_clean
def rm(remote, recursive, skip_trash):
    """Move a file (or a directory, with -r) to your trash; restore it with `mv`."""
    with _client(remote) as c:
        where = c.rm(_path(remote), recursive=recursive, trash=not skip_trash)
    if where:
        click.echo(f"moved {remote} to the trash: {where}")
    else:
        click.echo(f"deleted {remote}")


@fs.command("expunge")
@click.option("--immediate", is_flag=True, help="empty the trash now, checkpoints and all")
@click.option("--all-users", is_flag=True, help="every user's trash, not only yours")
@_clean
def expunge(immediate, all_users):
    """Checkpoint your trash and delete checkpoints older than the trash interval."""
    from mapred.storage.client import current_user
    with _client() as c:
        r = c.expunge(user="" if all_users else current_user(), immediate=immediate)
    for path in r["expunged"]:
        click.echo(f"expunged {path}")
    for path in r["checkpoints"]:
        click.echo(f"checkpoint {path}")
    click.echo(f"freed {r['freed_bytes']} bytes")


@fs.command("mv")
@click.argument("src")
@click.argument("dst")
@_clean
def mv(src, dst):
    """Rename or move (into DST when DST is a directory)."""
    with _client(src, dst) as c:
        c.mv(_path(src), _path(dst))


@fs.command("stat")
@click.argument("remote")
@_clean
def stat(remote):
    """Show a path's metadata as JSON."""
    with _client(remote) as c:
        click.echo(json.dumps(c.stat(_path(remote)), indent=2, sort_keys=True))


@fs.command("du")
@click.argument("remote", default="/")
@_clean
def du(remote):
    """Bytes used by each entry (and the total), before replication."""
    with _client(remote) as c:
        report = c.fsck(_path(remote))
        total = 0
        for e in c.ls(_path(remote)):
            size = e["length"] if e["type"] == "file" else _tree_size(c, e["path"])
            total += size
            click.echo(f"{size:>14} {e['path']}")
        click.echo(f"{total:>14} total ({report['files']} files, {report['blocks']} blocks)")


def _tree_size(c, path: str) -> int:
    return sum(e["length"] if e["type"] == "file" else _tree_size(c, e["path"]) for e in c.ls(path))


@fs.command("setrep")
@click.argument("replication", type=click.IntRange(1, 32))
@click.argument("remote")
@_clean
def setrep(replication, remote):
    """Set the replication factor of a file or every file under a directory."""
    with _client(remote) as c:
        n = c.setrep(_path(remote), replication)
    click.echo(f"replication {replication} set on {n} file(s)")


@fs.command("fsck")
@click.argument("remote", default="/")
@click.option("--json", "as_json", is_flag=True, help="the whole report as JSON")
@_clean
def fsck(remote, as_json):
    """Check files and blocks; exit 1 when a block is missing or corrupt."""
    with _client(remote) as c:
        r = c.fsck(_path(remote))
    if as_json:
        click.echo(json.dumps(r, indent=2, sort_keys=True))
    else:
        for p in r["problems"]:
            click.echo(f"{p['path']}: block {p['block_id']} {p['state']} ({p['live']}/{p['target']} live)")
        click.echo(f"files {r['files']}  blocks {r['blocks']}  missing {r['missing']}  corrupt "
                   f"{r['corrupt']}  under-replicated {r['under_replicated']}  over-replicated "
                   f"{r['over_replicated']}  live datanodes {r['live_datanodes']}")
        click.echo("status: " + ("HEALTHY" if r["healthy"] else "UNHEALTHY"))
    if not r["healthy"]:
        sys.exit(1)


@fs.command("report")
@_clean
def report():
    """DataNodes: address, state, capacity, used, blocks, last heartbeat."""
    with _client() as c:
        nodes = c.report()
    for n in nodes:
        admin = n.get("admin_state", "IN_SERVICE")
        pending = f" ({n['decommission_pending']} blocks to copy)" if "decommission_pending" in n else ""
        click.echo(f"{n['dnid']} {n['addr']} {n['state']} {admin}{pending} capacity "
                   f"{n['capacity'] / GiB:.1f} GiB used {n['used']} B  remaining "
                   f"{n['remaining'] / GiB:.1f} GiB  blocks {n['blocks']}  last heartbeat "
                   f"{n['last_heartbeat_s']:.1f}s ago")
    click.echo(f"{sum(n['state'] == 'LIVE' for n in nodes)} live, "
               f"{sum(n['state'] != 'LIVE' for n in nodes)} dead, "
               f"{sum(n.get('admin_state') == 'DECOMMISSION_INPROGRESS' for n in nodes)} decommissioning, "
               f"{sum(n.get('admin_state') == 'DECOMMISSIONED' for n in nodes)} decommissioned")


@fs.command("decommission")
@click.argument("datanode")
@click.option("--wait/--no-wait", default=False, help="return once it is DECOMMISSIONED")
@click.option("--timeout", default=600.0, show_default=True, help="seconds for --wait")
@click.option("--cancel", is_flag=True, help="put the DataNode back in service")
@_clean
def decommission(datanode, wait, timeout, cancel):
    """Copy DATANODE's blocks elsewhere, then mark it DECOMMISSIONED (safe to stop).

    DATANODE is its id or address (see `mapred fs report`).  It serves reads until done.
    """
    with _client() as c:
        r = c.decommission(datanode, on=not cancel)
        deadline = time.monotonic() + timeout
        while wait and not cancel and r["admin_state"] != "DECOMMISSIONED":
            if time.monotonic() > deadline:
                raise click.ClickException(f"{r['dnid']} still {r['admin_state']} after {timeout:g}s")
            time.sleep(0.5)
            r = next(dict(n, dnid=n["dnid"]) for n in c.report() if n["dnid"] == r["dnid"])
    click.echo(f"{r['dnid']}: {r['admin_state']}")


@fs.command("balance")
@click.option("--threshold", default=0.1, show_default=True, type=click.FloatRange(0.001, 0.999),
              help="allowed deviation from each node's fair share, as a fraction")
@click.option("--bandwidth", default="10MB", show_default=True, help="bytes per second of moves")
@click.option("--timeout", default=3600.0, show_default=True, help="seconds to wait")
@click.option("--wait/--no-wait", default=True, help="wait until the store is balanced")
@_clean
def balance(threshold, bandwidth, timeout, wait):
    """Move blocks from full DataNodes to empty ones (throttled) until usage is within THRESHOLD."""
    from mapred.storage.cleanup import size
    with _client() as c:
        r = c.balance("start", threshold, size(bandwidth, "--bandwidth"))
        deadline = time.monotonic() + timeout
        while wait and r["running"]:
            if time.monotonic() > deadline:
                c.balance("stop")
                raise click.ClickException(f"not balanced after {timeout:g}s ({r['moved']} moves); stopped")
            time.sleep(0.5)
            r = c.balance("status")
    for line in r["log"][-1:]:
        click.echo(line)
    for dnid, used in sorted(r["used"].items()):
        click.echo(f"{dnid} {used} B")
    click.echo("balanced" if r["balanced"] else f"balancing ({r['moving']} moves in flight)")


@fs.command("safemode")
@click.argument("action", type=click.Choice(["get", "enter", "leave", "wait"]))
@click.option("--timeout", default=60.0, show_default=True, help="seconds for `wait`")
@_clean
def safemode(action, timeout):
    """Show, enter, leave or wait for the end of safe mode."""
    with _client() as c:
        if action == "wait":
            deadline = time.monotonic() + timeout
            while c.safemode("get"):
                if time.monotonic() > deadline:
                    raise click.ClickException(f"still in safe mode after {timeout:g}s")
                time.sleep(0.2)
            on = False
        else:
            on = c.safemode(action)
    click.echo("safe mode is " + ("ON" if on else "OFF"))


COMMANDS = (namenode, datanode, fs)
