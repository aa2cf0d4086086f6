"""`ragtrail dashboard` options: loopback by default and open; off loopback only behind a login."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ragtrail.cli import main
from ragtrail.dashboard import login


@pytest.fixture
def execs(monkeypatch):
    """Capture the exec of streamlit instead of becoming it."""
    calls = []
    monkeypatch.setattr("os.execve", lambda path, argv, env: calls.append((argv, env)))
    monkeypatch.delenv(login.PASSWORD_ENV, raising=False)
    monkeypatch.delenv(login.LOGIN_ENV, raising=False)
    return calls


def test_non_loopback_host_is_refused_without_a_password(execs, tmp_path):
    result = CliRunner().invoke(main, ["dashboard", "--data", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "requires a login" in result.output and login.PASSWORD_ENV in result.output
    assert not execs


def test_non_loopback_host_starts_behind_the_login(execs, tmp_path):
    result = CliRunner().invoke(
        main, ["dashboard", "--data", str(tmp_path), "--host", "0.0.0.0"], env={login.PASSWORD_ENV: "pw"}
    )
    assert result.exit_code == 0, result.output
    ((argv, env),) = execs
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0"
    assert env[login.LOGIN_ENV] == login.digest("pw")
    assert login.PASSWORD_ENV not in env  # the app gets the digest only


def test_password_digest_from_ragtrail_toml(execs, tmp_path):
    (tmp_path / "ragtrail.toml").write_text(f'[dashboard]\npassword_sha256 = "{login.digest("pw")}"\n')
    result = CliRunner().invoke(main, ["dashboard", "--data", str(tmp_path), "--host", "10.1.2.3"])
    assert result.exit_code == 0, result.output
    assert execs[0][1][login.LOGIN_ENV] == login.digest("pw")
    (tmp_path / "ragtrail.toml").write_text('[dashboard]\npassword_sha256 = "pw"\n')
    result = CliRunner().invoke(main, ["dashboard", "--data", str(tmp_path), "--host", "10.1.2.3"])
    assert result.exit_code == 2 and "64 hex digits" in result.output


def test_loopback_stays_open(execs, tmp_path):
    result = CliRunner().invoke(main, ["dashboard", "--data", str(tmp_path)], env={login.PASSWORD_ENV: "pw"})
    assert result.exit_code == 0, result.output
    ((argv, env),) = execs
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert login.LOGIN_ENV not in env and login.PASSWORD_ENV not in env


def test_help_shows_loopback_default():
    result = CliRunner().invoke(main, ["dashboard", "--help"])
    assert result.exit_code == 0
    assert "127.0.0.1" in result.output
