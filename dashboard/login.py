"""The dashboard's login: who may see it when it listens beyond loopback.

The password comes from ``RAGTRAIL_DASHBOARD_PASSWORD`` or from ``ragtrail.toml``::

    [dashboard]
    password_sha256 = "<hex SHA-256 of the password>"   # the file never holds the password

`ragtrail dashboard` hands the Streamlit process only the digest (``LOGIN_ENV``) and only when it
binds a non-loopback address; the app then shows a login form before any page runs. Loopback stays
open. This module owns the digest and the comparison; it imports no Streamlit.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PASSWORD_ENV = "RAGTRAIL_DASHBOARD_PASSWORD"
LOGIN_ENV = "RAGTRAIL_DASHBOARD_LOGIN_SHA256"  # set by the CLI for the Streamlit process
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class LoginConfigError(ValueError):
    """A [dashboard] section that does not say how to log in; the message says what to fix."""


def digest(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def configured_digest(settings: dict | None, password: str | None = None) -> str | None:
    """The expected digest: from ``password`` (the environment variable) if given, else from the
    ``[dashboard]`` table's ``password_sha256``; None when neither is set."""
    unknown = set(settings or {}) - {"password_sha256"}
    if unknown:
        raise LoginConfigError(
            f"[dashboard]: unknown setting(s) {', '.join(sorted(unknown))}; the login takes "
            "password_sha256 (the file never holds the password itself)"
        )
    if password:
        return digest(password)
    value = (settings or {}).get("password_sha256")
    if value is None:
        return None
    value = str(value).strip().lower()
    if not _HEX_DIGEST.match(value):
        raise LoginConfigError(
            "[dashboard] password_sha256 must be 64 hex digits (the SHA-256 of the password)"
        )
    return value


def check(given: str, expected_digest: str) -> bool:
    """Constant-time comparison of the digest of ``given`` with the expected one."""
    return hmac.compare_digest(digest(given or ""), expected_digest.strip().lower())
