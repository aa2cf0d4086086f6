"""`ragtrail dashboard` options: loopback by default, refusing to expose a login-less dashboard."""

from __future__ import annotations

from click.testing import CliRunner

from ragtrail.cli import main


def test_non_loopback_host_is_refused_without_the_explicit_flag():
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "not loopback" in result.output


def test_help_shows_loopback_default():
    result = CliRunner().invoke(main, ["dashboard", "--help"])
    assert result.exit_code == 0
    assert "127.0.0.1" in result.output
