"""`ragtrail up`: the quick start — collector on the embedded store (+ demo traffic, + dashboard)."""

from __future__ import annotations

import click

from ragtrail.cli.collector_cmd import collector_options, load_config


@click.command()
@collector_options
def up(**options) -> None:
    """Run the collector on the embedded store; the demo and dashboard join it as they land."""
    from ragtrail.collector import server

    server.run(load_config(**options))
