"""The ``sluice`` command line: one module per command group, assembled here.

Settings come from flags or ``SLUICE_*`` environment variables (``--dsn`` or ``SLUICE_DSN``). Exit
codes: 0 success, 1 failure (with a one-line message on stderr), 2 usage error. See docs/cli.md.
"""

from __future__ import annotations

import click

from sluice.cli.append import append
from sluice.cli.consume import consume
from sluice.cli.database import demo, migrate
from sluice.cli.dead_letters import dead_letters
from sluice.cli.groups import groups, lag
from sluice.cli.project import project
from sluice.cli.queues import dequeue, enqueue
from sluice.cli.reading import read, tail
from sluice.cli.replay import replay
from sluice.cli.retention import retention
from sluice.cli.sagas import sagas
from sluice.cli.serve import serve
from sluice.cli.streams import streams


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sluice")
def main() -> None:
    """Sluice: Kubernetes-native event streaming on PostgreSQL."""


for command in (
    serve,
    migrate,
    demo,
    streams,
    append,
    read,
    tail,
    enqueue,
    dequeue,
    dead_letters,
    groups,
    lag,
    consume,
    project,
    sagas,
    replay,
    retention,
):
    main.add_command(command)
