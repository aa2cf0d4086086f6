"""The one `ragtrail` entry point: thin click commands over the library.

Each command group lives in its own module here and only parses options and calls the library.
"""

from __future__ import annotations

import click

from ragtrail.cli import audit_cmd, collector_cmd, dashboard_cmd, demo_cmd, maintenance_cmd, sql_cmd, up_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ragtrail")
def main() -> None:
    """ragtrail: observability and audit for LLM / RAG pipelines."""


for _command in (
    collector_cmd.collector,
    sql_cmd.sql,
    up_cmd.up,
    demo_cmd.demo,
    demo_cmd.gpu_agent,
    dashboard_cmd.dashboard,
    audit_cmd.audit_group,
    maintenance_cmd.retention,
    maintenance_cmd.erase,
):
    main.add_command(_command)
