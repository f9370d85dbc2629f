"""The ``mapred`` command: one click group; each node and tool is a subcommand.

Each command group is a module of this package (``fs``, ``cluster``, ``run``)
and is added here, so ``mapred --help`` lists everything.
"""
from __future__ import annotations

import click

from mapred.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mapred")
def main() -> None:
    """mapred: a MapReduce engine in Python.

    Run a job on an embedded local cluster with `mapred run JOBFILE INPUT -o OUT`,
    keep data in the block store with `mapred fs`, and start cluster nodes with
    `mapred namenode`, `mapred datanode`, `mapred master` and `mapred worker`;
    serve files, jobs and results over HTTP with `mapred serve`.
    """


def _register() -> None:
    from mapred.cli.fs import COMMANDS as storage_commands
    for command in storage_commands:
        main.add_command(command)
    from mapred.cli.cluster import COMMANDS as compute_commands  # master, worker, cluster, job
    for command in compute_commands:
        main.add_command(command)
    from mapred.cli.run import run
    main.add_command(run)
    from mapred.cli.models import COMMANDS as model_commands   # models list|show|..., predict
    for command in model_commands:
        main.add_command(command)
    from mapred.cli.cleanup import COMMANDS as cleanup_commands
    for command in cleanup_commands:
        main.add_command(command)
    from mapred.cli.keys import COMMANDS as key_commands
    for command in key_commands:
        main.add_command(command)
    from mapred.cli.serve import COMMANDS as service_commands  # serve, token
    for command in service_commands:
        main.add_command(command)
    from mapred.cli.convert import COMMANDS as format_commands   # convert, split
    for command in format_commands:
        main.add_command(command)


_register()
