"""``mapred run``: run the job a JOBFILE defines, with a live progress line and a counters summary."""
from __future__ import annotations

import os
import signal
import sys

import click

from mapred.errors import MapredError
from mapred.job import OUTPUT_FORMATS


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("jobfile", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="Output directory (local path or mrfs:// URI).")
@click.option("-r", "--reducers", type=click.IntRange(min=0), default=None, help="Number of reduce tasks.")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Executor processes of the embedded cluster (default: one per core).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A job parameter (repeatable).")
@click.option("--job", "job_name", default=None, help="Which job to run when JOBFILE defines several.")
@click.option("--format", "output_format", type=click.Choice(list(OUTPUT_FORMATS)), default=None,
              help="Output format: text (key<TAB>value lines), msgpack (records), raw (the bytes a reducer "
                   "yields), dataset (numpy row blocks), or csv, jsonl, parquet, avro, seq; default: the job's own.")
@click.option("--input-format", type=click.Choice(["text", "records", "csv", "jsonl", "parquet", "avro", "seq"]),
              default=None, help="Input format (default: each file's, by its extension).")
@click.option("--errors", type=click.Choice(["strict", "replace", "skip"]), default=None,
              help="Bad input: fail naming file and offset (strict), substitute undecodable bytes (replace), "
                   "or count bad records and keep them under OUTPUT/_bad_records/ (skip).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--master", default=None, metavar="tcp://HOST:PORT", help="Run on a cluster instead of locally.")
@click.option("--runner", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="Where tasks run: mapred itself (local, or the cluster --master names), or PySpark.")
@click.option("--spark-master", default=None, metavar="URL",
              help="With --runner spark: the Spark master (default local[*]).")
@click.option("-q", "--quiet", is_flag=True, help="No progress line and no counters.")
@click.option("--profile", is_flag=True,
              help="At the end, print where the job's time went: each task's stages (read, map, collect, "
                   "combine, sort, spill, merge, fetch, reduce, write) and their sums.")
def run(jobfile, inputs, output, reducers, workers, params, job_name, output_format, input_format, errors,
        overwrite, master, runner, spark_master, quiet, profile):
    """Run the Job (or MRJob class, or Pipeline) defined in JOBFILE on INPUT... and write OUTPUT.

    INPUT may be files, directories, globs or mrfs:// paths.  Runs on an
    embedded local cluster unless --master is given.  Exits 0 on success and
    non-zero, with the error, on failure.

    JOBFILE may also be an unmodified mrjob script: its own options go among
    the INPUTs (after `--` when they clash with mapred's, as -r does), and
    its job reads the positional ones.
    """
    from mapred.jobfile import configure, load_job, parse_params
    from mapred.progress import ProgressLine, format_counters
    progress = None
    previous = signal.signal(signal.SIGTERM, _terminated)
    # Ctrl-C must stop the job and remove its output even when the parent started us with SIGINT
    # ignored or blocked (both are inherited across exec: a script's background command, a
    # thread that masked it); otherwise the signal is lost and the job runs on
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        loaded = load_job(jobfile, job_name, script_args=inputs)
        inputs = _job_inputs(loaded, inputs)
        job = configure(loaded, parse_params(params), reducers, output_format, errors,
                        input_format)
        cluster = None
        from mapred.cli.common import use_recorded_keys
        use_recorded_keys(master or next((p for p in inputs if p.startswith("mrfs://")), ""))
        if master:
            import mapred
            cluster = mapred.connect(master)
        if runner == "spark":
            result = job.run(list(inputs), output, overwrite=overwrite, cluster=cluster, runner="spark",
                             spark_master=spark_master)
        else:
            progress = None if quiet else ProgressLine()
            result = job.run(list(inputs), output, overwrite=overwrite, workers=workers, cluster=cluster,
                             progress=progress)
    except MapredError as exc:
        raise click.ClickException(str(exc)) from None
    except Terminated:
        # the runner already killed the job's attempts and removed its output on the way out
        click.echo("\nmapred run: terminated; the job was killed and its output removed", err=True)
        sys.exit(143)
    except KeyboardInterrupt:
        click.echo("\nmapred run: interrupted; the job was killed and its output removed", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        if progress is not None:
            progress.close()
    if not quiet:
        click.echo(format_counters(result.counters), err=True)
        click.echo(f"output: {result.path} ({result.elapsed:.2f}s)", err=True)
    if profile:
        click.echo(_profile_of(result, cluster))


def _profile_of(result, cluster) -> str:
    """The per-stage table of a finished run: from the local runner's tasks, or the master's status."""
    from mapred.runtime import profile as prof
    tasks = list(result.task_counters.items())
    if not tasks and cluster is not None and result.job_id:
        tasks = prof.tasks_of_status(cluster.status(result.job_id, detail=True))
    return prof.render(prof.task_stage_times(tasks))


def _job_inputs(job, inputs) -> list:
    """The input paths: an mrjob script's positional arguments, else INPUT... (which may hold no option)."""
    from mapred.errors import ConfigError
    mrjob_inputs = getattr(job, "mrjob_inputs", None)
    if mrjob_inputs is not None:
        if not mrjob_inputs:
            raise ConfigError("the mrjob script was given no input path")
        return list(mrjob_inputs)
    options = [i for i in inputs if i.startswith("-") and i != "-"]
    if options:
        raise ConfigError(f"no such option: {options[0]} (mapred run --help lists the options)")
    return list(inputs)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the runner stands so that it stops the job as it does for Ctrl-C.

    A ``KeyboardInterrupt`` so every runner's interrupt path (kill the
    attempts, abort the output, tell a master to kill the job) applies.
    """


def _terminated(signum, frame):
    raise Terminated()


def example_main(jobfile: str, default_params: tuple = ()) -> None:
    """``python examples/X.py [INPUT... -o OUT ...]``: the example as ``mapred run`` would run it.

    With no arguments the job runs on the bundled ``examples/data`` into a
    temporary directory and the first lines of its output are printed, so
    every example can be tried with one command.  With arguments it is
    exactly ``mapred run JOBFILE ARGS...``.
    """
    import shutil
    import tempfile
    args = sys.argv[1:]
    if args:
        run.main([jobfile, *args], prog_name=f"python {jobfile}")
        return
    data = os.path.join(os.path.dirname(os.path.abspath(jobfile)), "data")
    out = tempfile.mkdtemp(prefix="mapred-example-")
    try:
        params = [x for p in default_params for x in ("--param", p)]
        try:
            run.main([jobfile, data, "-o", out, "--overwrite", *params], standalone_mode=False)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        lines = []
        for name in sorted(os.listdir(out)):
            if name.startswith("part-"):
                with open(os.path.join(out, name), encoding="utf-8", errors="replace") as f:
                    lines.extend(f.read().splitlines())
        for line in lines[:20]:
            click.echo(line)
        click.echo(f"({len(lines)} output lines from {data}; run with INPUT... -o OUT to keep them)", err=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
