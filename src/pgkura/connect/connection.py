"""Connections to the target server, and waiting until it really accepts them.

A failed connection is classified by libpq's own facts, never by the words of its message
(which contain user data such as database names): PQping says whether a server answers at all
and whether it refuses connections only for now (starting up, shutting down, recovering), and
the failed connection says whether the server wanted a password that we did not have.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

import psycopg
from psycopg import pq
from psycopg.conninfo import make_conninfo

from pgkura.dsn import Target, TargetKind
from pgkura.durations import render_ms
from pgkura.errors import ConnectError

APPLICATION_NAME = "pgkura"


class Refusal(enum.Enum):
    """Why a connection failed, as far as libpq can tell."""

    UNREACHABLE = "no server answers"  # not started yet, wrong host/port, socket missing
    NOT_NOW = "the server is starting up, shutting down or recovering"
    NO_PASSWORD = "the server wants a password and none was given"  # noqa: S105
    REFUSED = "the server answered and refused the connection"
    BAD_PARAMETERS = "the connection parameters are invalid"

    @property
    def transient(self) -> bool:
        """Whether waiting can cure it."""
        return self in (Refusal.UNREACHABLE, Refusal.NOT_NOW)


class ConnectionRefused(ConnectError):
    """A connection failed; `refusal` says why, for callers that decide what to do next."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal = refusal


_PING = {
    pq.Ping.NO_RESPONSE: Refusal.UNREACHABLE,
    pq.Ping.REJECT: Refusal.NOT_NOW,
    pq.Ping.NO_ATTEMPT: Refusal.BAD_PARAMETERS,
}


# SQLSTATEs (class 57, operator intervention) with which the server ends an open session or
# refuses a new one for now, and what each says about the server
_GONE = {
    "57P01": "the server is shutting down, or an administrator ended this session "
    "(SQLSTATE 57P01 admin_shutdown)",
    "57P02": "another server process crashed, so PostgreSQL ended every session and restarts "
    "its processes (SQLSTATE 57P02 crash_shutdown)",
    "57P03": "the server is starting up, shutting down or recovering after a crash "
    "(SQLSTATE 57P03 cannot_connect_now)",
}


def session_lost(exc: psycopg.Error) -> str | None:
    """Why the server ended an open session, from its SQLSTATE; None for an ordinary error.
    A connection that broke without a SQLSTATE counts too: the server (or its container)
    went away without a word. Failed connection attempts never get here (`connect` raises
    ConnectionRefused for them)."""
    if exc.sqlstate in _GONE:
        return _GONE[exc.sqlstate]
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return "the connection broke without a word from the server (it stopped or crashed)"
    return None


def conninfo(target: Target) -> str:
    return make_conninfo("", **target.params)


def connect(target: Target, *, purpose: str = "", connect_timeout: int = 10) -> psycopg.Connection:
    """An autocommit connection; transactions are always explicit in pgkura."""
    name = f"{APPLICATION_NAME} {purpose}".strip()
    try:
        return psycopg.connect(
            conninfo(target),
            autocommit=True,
            application_name=name,
            connect_timeout=connect_timeout,
        )
    except psycopg.OperationalError as exc:
        refusal = classify(target, exc)
        raise ConnectionRefused(explain(target, exc, refusal), refusal) from None


def through_pooler(conn: psycopg.Connection) -> bool:
    """Whether a pooler (PgBouncer, pgcat, Supavisor...) stands between us and the server.

    libpq's backend PID is the one announced when the connection opened; a pooler announces a
    key of its own, never the pid of the server process that runs our statements (which it may
    change between transactions), so the two differ. A direct connection always agrees."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    return row is not None and row[0] != conn.info.backend_pid


def classify(target: Target, exc: psycopg.OperationalError) -> Refusal:
    """Why `exc` happened, from libpq's state and a PQping of the same server."""
    pgconn = exc.pgconn
    if pgconn is not None and pgconn.needs_password and not target.password:
        return Refusal.NO_PASSWORD
    return ping(target) or Refusal.REFUSED


def ping(target: Target) -> Refusal | None:
    """PQping: None when the server answers and takes connections (whether it would take ours
    is not asked), else why not; cheap, no login."""
    # bounded: an unreachable host must not hang the check for the kernel's TCP timeout
    params = {**target.params, "connect_timeout": target.params.get("connect_timeout", "3")}
    answer = pq.Ping(pq.PGconn.ping(make_conninfo("", **params).encode()))
    return _PING.get(answer)


def wait_until_ready(
    target: Target,
    timeout_ms: int,
    *,
    poll_s: float = 0.25,
    still_hopeful: Callable[[], None] | None = None,
) -> int:
    """Poll until a real query succeeds; the server's version number (e.g. 180006).

    Refusals that waiting cannot cure are raised at once. `still_hopeful` is called after each
    transient failure and raises when waiting is pointless (e.g. the container has exited).
    A server with `listen_addresses = ''` reached over a socket is the image entrypoint's
    temporary init-phase server (it restarts once init.sql has run): not ready yet."""
    deadline = time.monotonic() + timeout_ms / 1000
    over_socket = target.params.get("host", "").startswith("/")
    refused_before = False
    while True:
        try:
            with connect(target, purpose="wait", connect_timeout=2) as conn:
                row = conn.execute("SELECT current_setting('listen_addresses')").fetchone()
                if not (over_socket and row is not None and row[0] == ""):
                    return conn.info.server_version
            last: ConnectionRefused = ConnectionRefused(
                f"{target.redacted()} is still initialising (first start)", Refusal.NOT_NOW
            )
        except ConnectionRefused as exc:
            # A refusal is classified by a PQping just after it: a server that said "starting
            # up" and was ready a moment later looks like a real refusal once. So a refusal
            # counts when it happens twice in a row; a wrong password does, a start-up does not.
            real = exc.refusal is not Refusal.REFUSED or refused_before
            if not exc.refusal.transient and real:
                raise
            refused_before = exc.refusal is Refusal.REFUSED
            last = exc
        if still_hopeful is not None and last.refusal.transient:
            still_hopeful()
        if time.monotonic() >= deadline:
            raise ConnectionRefused(
                f"{last}\n(gave up after {render_ms(timeout_ms)}; raise PGKURA_CONNECT_WAIT "
                "if the server needs longer to start)",
                last.refusal,
            )
        time.sleep(poll_s)


def explain(target: Target, exc: psycopg.OperationalError, refusal: Refusal) -> str:
    """libpq's message on one line (it never contains the password) and what to do."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    detail = " ".join(line for line in lines if line) or type(exc).__name__
    return f"cannot connect to {target.redacted()}: {detail}\n→ {_remedy(target, refusal)}"


def where_logs(target: Target) -> str:
    return "The server's log" if target.kind is TargetKind.URL else "`invoke db.logs`"


def _remedy(target: Target, refusal: Refusal) -> str:
    if refusal is Refusal.NOT_NOW:  # it answered: it runs, so `db.up` is not the cure
        return (
            f"{_GONE['57P03']}: it takes connections again by itself once that is over. "
            f"{where_logs(target)} says which (a crash restart shows 'terminating any other "
            "active server processes'); run this again then"
        )
    if target.kind is TargetKind.EMBEDDED:
        if refusal.transient:
            return "start it with `invoke db.up` (PGKURA_ENGINE=embedded; check POSTGRES_PORT)"
        return (f"check POSTGRES_USER / POSTGRES_DB and {target.credentials}: the embedded "
                "cluster keeps the password it was initialised with (`invoke db.reset` starts "
                "over)")  # fmt: skip
    if not target.is_container:
        if refusal is Refusal.UNREACHABLE:
            return (f"check the host and port in {target.credentials}, and that the server "
                    "lets you in")  # fmt: skip
        return f"check {target.credentials} (user, password, database, sslmode, sslrootcert)"
    if refusal.transient:
        return "start it with `invoke db.up` (and check POSTGRES_HOST / POSTGRES_PORT)"
    if refusal is Refusal.NO_PASSWORD:
        return (
            f"set {target.credentials} (copy .env.example to .env if there is none) to the "
            "password the data volume was created with"
        )
    return (
        f"check POSTGRES_USER / POSTGRES_DB and {target.credentials}. The image sets the "
        "password only when it initialises an empty volume: editing .env later does not change "
        "it. Put back the original password, or change it in the server with `invoke db.psql` "
        "and `\\password <user>` (psql in the container needs none) and then in .env; "
        "`invoke db.reset` starts over with an empty database"
    )
