"""Connections to the target server, and waiting until it really accepts them."""

from __future__ import annotations

import time

import psycopg
from psycopg.conninfo import make_conninfo

from pgkura.dsn import Target
from pgkura.durations import render_ms
from pgkura.errors import ConnectError

APPLICATION_NAME = "pgkura"
# Refusals that waiting will not cure: report them at once instead of after the timeout.
_PERMANENT = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "invalid",
    "SSL is not enabled",
)


def connect(target: Target, *, purpose: str = "", connect_timeout: int = 10) -> psycopg.Connection:
    """An autocommit connection; transactions are always explicit in pgkura."""
    name = f"{APPLICATION_NAME} {purpose}".strip()
    try:
        return psycopg.connect(
            make_conninfo("", **target.params),
            autocommit=True,
            application_name=name,
            connect_timeout=connect_timeout,
        )
    except psycopg.OperationalError as exc:
        raise ConnectError(_explain(target, exc)) from None


def wait_until_ready(target: Target, timeout_ms: int, *, poll_s: float = 0.25) -> int:
    """Poll until a real query succeeds; the server's version number (e.g. 180006).

    A server with `listen_addresses = ''` reached over a socket is the image entrypoint's
    temporary init-phase server (it restarts once init.sql has run): not ready yet."""
    deadline = time.monotonic() + timeout_ms / 1000
    over_socket = target.params.get("host", "").startswith("/")
    while True:
        try:
            with connect(target, purpose="wait", connect_timeout=2) as conn:
                row = conn.execute("SELECT current_setting('listen_addresses')").fetchone()
                init_phase = over_socket and row is not None and row[0] == ""
                if not init_phase:
                    return conn.info.server_version
            raise ConnectError(f"{target.redacted()} is still initialising (first start)")
        except ConnectError as exc:
            if _is_permanent(str(exc)) or time.monotonic() >= deadline:
                if time.monotonic() >= deadline:
                    raise ConnectError(
                        f"{exc}\n(gave up after {render_ms(timeout_ms)}; raise PGKURA_CONNECT_WAIT "
                        "if the server needs longer to start)"
                    ) from None
                raise
        time.sleep(poll_s)


def _is_permanent(message: str) -> bool:
    return any(marker in message for marker in _PERMANENT)


def _explain(target: Target, exc: psycopg.OperationalError) -> str:
    detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    password = target.password
    if password:
        detail = detail.replace(password, "***")
    remedy = (
        "start it with `invoke db.up`, or check POSTGRES_HOST / POSTGRES_PORT in .env"
        if target.source == "container"
        else "check DATABASE_URL (host, port, credentials, sslmode)"
    )
    return f"cannot connect to {target.redacted()}: {detail}\n→ {remedy}"
