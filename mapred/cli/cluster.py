"""CLI of the compute plane: ``mapred master``, ``worker``, ``cluster up|down``, ``job ...``.

Also runnable alone as ``python -m mapred.cli.cluster ...`` — how ``Cluster``
starts its daemons, so that they do not depend on every other subcommand
importing cleanly.  Errors become one-line messages and non-zero exits.
"""
from __future__ import annotations

import json
import os
import time

import click

from mapred.cli.common import clean_errors as _clean, daemon_logging as _daemon_logging, namenode_option




@click.command("master")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="0 = random")
@click.option("--namenode", default="", envvar="MAPRED_NAMENODE", callback=namenode_option,
              help="tcp://H:P or mrfs://H:P of the block store")
@click.option("--ready-file", default="", help="write the bound address here once serving")
@click.option("--data-dir", default="", type=click.Path(file_okay=False),
              help="journal jobs here; a master restarted with the same dir binds its old port and "
                   "finishes the jobs it had (default: no journal)")
@click.option("--dead-timeout", type=click.FloatRange(0.1), help="seconds of silence before a worker is dead")
@click.option("--speculation/--no-speculation", default=None, help="backup attempts for stragglers")
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
@_clean
def master(host, port, namenode, ready_file, data_dir, dead_timeout, speculation, verbose):
    """Run the master: accepts jobs, schedules tasks on workers."""
    from mapred.master import run
    _daemon_logging(verbose)
    run(host, port, namenode, ready_file, data_dir, dead_timeout=dead_timeout, speculation=speculation)


@click.group("worker", invoke_without_command=True)
@click.option("--master", "master_addr", envvar="MAPRED_MASTER", help="tcp://H:P")
@click.option("--slots", type=click.IntRange(1), help="task slots (default: cores)")
@click.option("--data-dir", default="", help="map outputs go here (default: a temp dir)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address of the shuffle server")
@click.option("--short-circuit/--no-short-circuit", default=True, show_default=True,
              help="read map outputs on this host from disk instead of over the network")
@click.option("--memory-cap", type=click.IntRange(0), help="MiB of RSS per executor before its attempt is killed")
@click.option("--heartbeat", type=click.FloatRange(0.05), help="seconds between heartbeats")
@click.option("--claim-version", default="", hidden=True, help="testing: report another version")
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
@click.pass_context
@_clean
def worker(ctx, master_addr, slots, data_dir, host, short_circuit, memory_cap, heartbeat, claim_version,
           verbose):
    """Run a worker: executes tasks for the master at --master (`worker drain` retires one)."""
    import tempfile
    ctx.obj = {"master": master_addr}
    if ctx.invoked_subcommand is not None:
        return
    if not master_addr:
        raise click.UsageError("Missing option '--master' (or set MAPRED_MASTER).")

    from mapred.version import __version__
    from mapred.worker import run
    _daemon_logging(verbose)
    run(master_addr, data_dir or tempfile.mkdtemp(prefix="mapred-worker-"), slots, host,
        short_circuit, claim_version or __version__,
        executor_memory_cap=memory_cap << 20 if memory_cap is not None else None,
        heartbeat_interval=heartbeat)


@worker.command("drain")
@click.argument("worker_id")
@click.option("--master", "drain_master", envvar="MAPRED_MASTER", default="", help="tcp://H:P")
@click.option("--timeout", default=0.0, show_default=True, type=click.FloatRange(0),
              help="retire it after this many seconds anyway (0 = wait until nothing is needed)")
@click.option("--wait/--no-wait", default=True, help="return once it is DECOMMISSIONED")
@click.pass_context
@_clean
def worker_drain(ctx, worker_id, drain_master, timeout, wait):
    """Take no new tasks on WORKER_ID, let it finish and serve its map outputs, then retire it."""
    import time

    from mapred.runtime.client import connect
    addr = drain_master or ctx.obj.get("master") or _recorded_master()
    if not addr:
        raise click.ClickException("no master: pass --master tcp://H:P or set MAPRED_MASTER")
    with connect(addr) as c:
        r = c.drain(worker_id, timeout)
        click.echo(f"{r['worker_id']}: {r['state']} ({r['needed_outputs']} map outputs still needed)")
        while wait and r["state"] == "DECOMMISSIONING":
            time.sleep(0.25)
            r = next(w for w in c.workers(alive_only=False) if w["worker_id"] == r["worker_id"])
        if wait:
            click.echo(f"{r['worker_id']}: {r['state']}")


@click.group("cluster")
def cluster() -> None:
    """Start or stop a whole cluster on this machine."""


@cluster.command("up")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1), help="worker processes")
@click.option("--min-workers", type=click.IntRange(1), help="adaptive: never fewer workers (default --workers)")
@click.option("--max-workers", type=click.IntRange(1), help="adaptive: grow up to this many while tasks wait")
@click.option("--scale-up-delay", default=2.0, show_default=True, type=click.FloatRange(0),
              help="adaptive: seconds tasks must wait before the cluster grows")
@click.option("--idle-timeout", default=60.0, show_default=True, type=click.FloatRange(0),
              help="adaptive: seconds a worker must be idle before it is retired (by drain)")
@click.option("--datanodes", default=0, show_default=True, type=click.IntRange(0),
              help="DataNodes of a block store (0: no store, local paths only)")
@click.option("--slots", default=0, type=click.IntRange(0), help="slots per worker (default: cores / workers)")
@click.option("--dir", "dir_", default=".mapred-cluster", show_default=True, type=click.Path(file_okay=False),
              help="logs, data dirs and the state file `cluster down` reads")
@click.option("--dead-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="seconds of silence before a worker or DataNode is dead")
@click.option("--block-size", default=64 << 20, show_default=True, type=click.IntRange(1024),
              help="bytes per block for files the store makes")
@click.option("--keys/--insecure", "keys", default=True, show_default=True,
              help="every node and you get your own CURVE key (DIR/keys), the default; --insecure: "
                   "no keys, loopback only, and any local process may register a DataNode or worker")
@click.option("--service/--no-service", default=True, show_default=True, help="start `mapred serve` too")
@click.option("--service-port", default=8470, show_default=True, type=click.IntRange(0, 65535),
              help="the service's port (a random one if it is busy)")
@_clean
def cluster_up(workers, min_workers, max_workers, scale_up_delay, idle_timeout, datanodes, slots, dir_,
               dead_timeout, block_size, keys, service, service_port):
    """Start master, workers (and NameNode + DataNodes, and the HTTP service) as background processes.

    With --max-workers the cluster is adaptive: an autoscaler grows it while tasks
    wait and retires idle workers through `mapred worker drain`.
    """
    from mapred.runtime.procs import STATE_FILE
    from mapred.security import keys as keymod
    if os.path.exists(os.path.join(dir_, STATE_FILE)):
        raise click.ClickException(f"a cluster is already recorded in {dir_}; run `mapred cluster down --dir {dir_}`")
    adaptive = max_workers is not None or min_workers is not None
    if adaptive:
        min_workers = min_workers or workers
        max_workers = max_workers or max(min_workers, workers)
        if min_workers > max_workers:
            raise click.BadParameter(f"--min-workers {min_workers} exceeds --max-workers {max_workers}")
        workers = min_workers
    slots = slots or max(1, (os.cpu_count() or 1) // (max_workers if adaptive else workers))
    _start_guard(os.path.join(os.path.abspath(dir_), STATE_FILE))
    env = {}
    if not keys:
        click.echo("warning: --insecure: no keys; the cluster listens on loopback only and trusts "
                   "every local process (any local user can register a DataNode or a worker, "
                   "submit code and read any file)", err=True)
    elif not os.environ.get("MAPRED_SECRET"):
        keydir = keymod.KeyDir(os.path.join(os.path.abspath(dir_), "keys"))
        me = os.environ.get("MAPRED_PRINCIPAL") or keymod.principal_name_of_user()
        keydir.ensure(me, "admin")          # the user who started the cluster administers it
        env = {"MAPRED_KEYS": keydir.path, "MAPRED_PRINCIPAL": me}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)                  # this process's own client (waiting for workers) too
    try:
        _start_cluster(dir_, workers, slots, datanodes, dead_timeout, block_size, env, service,
                       service_port, adaptive, min_workers, max_workers, scale_up_delay, idle_timeout)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _start_cluster(dir_, workers, slots, datanodes, dead_timeout, block_size, env, service,
                   service_port, adaptive, min_workers, max_workers, scale_up_delay, idle_timeout):
    """Start the processes of ``cluster up``, record a keyed cluster, and print where it is."""
    from mapred.runtime.procs import Cluster
    from mapred.security import keys as keymod
    c = Cluster(dir_, workers=workers, slots=slots, datanodes=datanodes, dead_timeout=dead_timeout, detach=True,
                block_size=block_size, env=env, service=service, service_port=service_port)
    try:
        token_path = _user_token(c.token_file, os.path.join(c.dir, "token")) if service else ""
        c.start()
        if adaptive:
            c.extra_procs.append(c._spawn(
                ["autoscale", "--master", c.master_addr, "--dir", c.dir, "--min-workers", str(min_workers),
                 "--max-workers", str(max_workers), "--slots", str(slots), "--up-delay", str(scale_up_delay),
                 "--idle-timeout", str(idle_timeout)], "autoscale.log"))
        state = c.write_state()
        c.client().close()
        c._client = None
        if env:
            keymod.record_cluster([c.master_addr, c.namenode_uri().replace("mrfs://", "tcp://")],
                                  env["MAPRED_KEYS"], env["MAPRED_PRINCIPAL"])
    except BaseException:
        c.stop()
        raise
    click.echo(f"master    {c.master_addr}")
    if c.namenode_uri():
        click.echo(f"namenode  {c.namenode_uri()}")
    click.echo(f"workers   {workers} x {slots} slots" +
               (f" (adaptive {min_workers}..{max_workers}, see `mapred cluster status`)" if adaptive else ""))
    if c.service_url:
        click.echo(f"service   {c.service_url}  (status page: {c.service_url}/)")
        click.echo(f"token     {token_path}  (admin; send as 'Authorization: Bearer TOKEN')")
    click.echo(f"state     {state}")
    if env:
        click.echo(f"keys      {env['MAPRED_KEYS']} (you are {env['MAPRED_PRINCIPAL']}, admin; "
                   "`mapred keys gen NAME --role user --dir ...` adds users)")
    click.echo(f"stop with `mapred cluster down --dir {dir_}`")


@cluster.command("status")
@click.option("--dir", "dir_", default=".mapred-cluster", show_default=True, type=click.Path(file_okay=False),
              help="the directory `cluster up` used")
@click.option("--json", "as_json", is_flag=True, help="the workers and decisions as JSON")
@_clean
def cluster_status(dir_, as_json):
    """Workers with their states, and each scaling decision with its reason."""
    from mapred.runtime.autoscale import STATUS_FILE
    from mapred.runtime.client import connect
    from mapred.runtime.procs import STATE_FILE
    try:
        with open(os.path.join(dir_, STATE_FILE)) as f:
            master_addr = json.load(f)["master"]
    except (OSError, ValueError, KeyError):
        raise click.ClickException(f"no running cluster recorded in {dir_}") from None
    scaling = {}
    if os.path.exists(os.path.join(dir_, STATUS_FILE)):
        with open(os.path.join(dir_, STATUS_FILE)) as f:
            scaling = json.load(f)
    with connect(master_addr) as c:
        info = c.cluster_info()
    if as_json:
        click.echo(json.dumps({"workers": info["workers"], "waiting_tasks": info.get("waiting_tasks", 0),
                               "scaling": scaling}, indent=1))
        return
    for w in info["workers"]:
        click.echo(f"{w['worker_id']:<28} {w.get('state', '?'):<16} slots {w['slots']}  running "
                   f"{w['running']}  needed outputs {w.get('needed_outputs', 0)}")
    click.echo(f"waiting tasks {info.get('waiting_tasks', 0)}")
    for d in scaling.get("decisions", [])[-20:]:
        what = f"grow +{d['count']}" if d["action"] == "grow" else f"retire {d['worker']}"
        click.echo(f"{time.strftime('%H:%M:%S', time.localtime(d['time']))} {what}: {d['reason']}")


@click.command("autoscale")
@click.option("--master", "master_addr", required=True, help="tcp://H:P")
@click.option("--dir", "dir_", required=True, type=click.Path(file_okay=False), help="workers' dirs and status")
@click.option("--min-workers", default=1, show_default=True, type=click.IntRange(0), help="never fewer workers")
@click.option("--max-workers", default=4, show_default=True, type=click.IntRange(1), help="never more workers")
@click.option("--slots", default=1, show_default=True, type=click.IntRange(1), help="slots of each worker it starts")
@click.option("--up-delay", default=2.0, show_default=True, type=click.FloatRange(0), help="seconds tasks must wait before the cluster grows")
@click.option("--idle-timeout", default=60.0, show_default=True, type=click.FloatRange(0), help="seconds a worker must be idle before it is retired")
@click.option("--poll", default=0.5, show_default=True, type=click.FloatRange(0.05), help="seconds between looks at the master")
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
@_clean
def autoscale(master_addr, dir_, min_workers, max_workers, slots, up_delay, idle_timeout, poll, verbose):
    """Grow and shrink the workers of a cluster mapred launched (started by `cluster up --max-workers`)."""
    from mapred.core.scaling import ScalingPolicy
    from mapred.runtime.autoscale import run
    _daemon_logging(verbose)
    run(master_addr, dir_, ScalingPolicy(min_workers, max_workers, slots, up_delay, idle_timeout), poll)


def _user_token(token_file: str, path: str) -> str:
    """Make an admin token for the user starting the cluster; write it to ``path`` (mode 0600)."""
    import getpass

    from mapred.service.tokens import TokenStore
    tok, _ = TokenStore(token_file).create(getpass.getuser() or "admin", "admin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tok + "\n")
    return path


def _start_guard(state_file: str) -> None:
    """A detached watcher that stops what we started if we die before writing ``state_file``."""
    import subprocess
    import sys
    os.makedirs(os.path.dirname(state_file), exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "mapred.runtime.guard", str(os.getpid()), state_file],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    proc.stdout.readline()     # it watches us from now on
    proc.stdout.close()


@cluster.command("restart-master")
@click.option("--dir", "dir_", default=".mapred-cluster", show_default=True, type=click.Path(file_okay=False),
              help="the directory `cluster up` used")
@_clean
def cluster_restart_master(dir_):
    """Start the cluster's master again after it died (kill -9, a crash): same port, same journal.

    Jobs it had not finished run on to the end (committed tasks kept); workers
    and waiting `mapred run --master` clients reconnect by themselves.
    """
    from mapred.runtime.procs import restart_master
    addr = restart_master(dir_)
    click.echo(f"master    {addr}  (restarted on its journal)")


@cluster.command("down")
@click.option("--dir", "dir_", default=".mapred-cluster", show_default=True, type=click.Path(file_okay=False),
              help="the directory `cluster up` used")
@_clean
def cluster_down(dir_):
    """Stop the cluster recorded in --dir (kills its processes by pid)."""
    from mapred.runtime.procs import STATE_FILE, down
    from mapred.security.keys import forget_cluster
    try:
        with open(os.path.join(dir_, STATE_FILE)) as f:
            state = json.load(f)
        forget_cluster([state.get("master", ""), state.get("namenode", "").replace("mrfs://", "tcp://")])
    except (OSError, ValueError):
        pass
    n = down(dir_)
    click.echo(f"stopped {n} processes")


@click.group("job")
@click.option("--master", "master_addr", envvar="MAPRED_MASTER", default="", help="tcp://H:P")
@click.option("--timeout", default=10.0, show_default=True, help="seconds to wait for the master")
@click.pass_context
def job(ctx, master_addr, timeout):
    """Inspect and control jobs on a cluster (--master or MAPRED_MASTER)."""
    ctx.obj = {"master": master_addr, "timeout": timeout}


def _client(ctx):
    from mapred.runtime.client import connect
    addr = ctx.obj["master"] or _recorded_master()
    if not addr:
        raise click.ClickException("no master: pass --master tcp://H:P or set MAPRED_MASTER")
    from mapred.cli.common import use_recorded_keys
    use_recorded_keys(addr)
    return connect(addr, timeout=ctx.obj["timeout"])


def _recorded_master() -> str:
    from mapred.runtime.procs import STATE_FILE
    path = os.path.join(".mapred-cluster", STATE_FILE)
    try:
        with open(path) as f:
            return json.load(f)["master"]
    except (OSError, ValueError, KeyError):
        return ""


@job.command("list")
@click.pass_context
@_clean
def job_list(ctx):
    """Every job the master knows, newest last."""
    with _client(ctx) as c:
        for j in c.jobs():
            p = j["progress"]
            click.echo(f"{j['job_id']:<18} {j['state']:<10} maps {p.get('maps_done', 0)}/{p.get('maps', 0)} "
                       f"reduces {p.get('reduces_done', 0)}/{p.get('reduces', 0)}  {j['name']}")


@job.command("status")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="the whole status as JSON")
@click.pass_context
@_clean
def job_status(ctx, job_id, as_json):
    """A job's state, tasks, attempts (where each ran), counters, and its error with traceback."""
    from mapred.runtime.status import render
    with _client(ctx) as c:
        st = c.status(job_id, detail=True)
    click.echo(json.dumps(st, indent=1, default=str) if as_json else render(st))


@job.command("profile")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="per-task stage times and their sums as JSON")
@click.pass_context
@_clean
def job_profile(ctx, job_id, as_json):
    """Where a job's time went: each task's stages (read, map, collect, combine, sort, spill, merge,
    fetch, reduce, write, in ms) and their sums."""
    from mapred.runtime import profile as prof
    with _client(ctx) as c:
        st = c.status(job_id, detail=True)
    rows = prof.task_stage_times(prof.tasks_of_status(st))
    if as_json:
        click.echo(json.dumps({"tasks": dict(rows), "summed": prof.summed(rows)}, indent=1))
    else:
        click.echo(prof.render(rows))


@job.command("kill")
@click.argument("job_id")
@click.pass_context
@_clean
def job_kill(ctx, job_id):
    """Kill a running job (its running attempts are stopped, its output removed)."""
    with _client(ctx) as c:
        c.kill(job_id)
    click.echo(f"kill of {job_id} requested")


@job.command("logs")
@click.argument("job_id")
@click.option("--task", default="", help="only lines about this task or attempt id")
@click.pass_context
@_clean
def job_logs(ctx, job_id, task):
    """The master's log of a job: assignments, failures with tracebacks, commits, kills."""
    with _client(ctx) as c:
        for line in c.logs(job_id, task):
            click.echo(line)


COMMANDS = [master, worker, cluster, job, autoscale]

