"""``python -m mapred.storage namenode|datanode|fs ...``: the store's commands alone.

The test harness starts nodes this way so that the store does not depend on
the rest of the ``mapred`` command group importing cleanly.
"""
import click

from .cli import COMMANDS


@click.group()
def main() -> None:
    """The block store's commands (also available under `mapred`)."""


for _command in COMMANDS:
    main.add_command(_command)

main()
