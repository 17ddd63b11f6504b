"""Connection targets: DATABASE_URL parsing, libpq parameters, and password-free rendering.

libpq itself parses the URL (percent-decoding, multiple hosts, query options), so what we
accept is exactly what psql and pg_dump accept; we only strip driver suffixes such as
`postgresql+asyncpg://` that application frameworks add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

_SCHEME = re.compile(r"^(postgres|postgresql)(\+[a-z0-9_]+)?://", re.IGNORECASE)
# Frameworks built on asyncpg spell the TLS option `ssl=`; libpq wants `sslmode=`.
_ASYNCPG_SSL = {"true": "require", "1": "require", "false": "disable", "0": "disable"}
_SHOWN_IN_URL = {"host", "port", "user", "password", "dbname"}


@dataclass(frozen=True)
class Target:
    """Where a task connects: libpq parameters plus a description that is safe to print."""

    params: dict[str, str] = field(repr=False)
    source: str  # "container" or "DATABASE_URL"

    @property
    def dbname(self) -> str:
        return self.params.get("dbname") or self.params.get("user") or "postgres"

    @property
    def password(self) -> str | None:
        return self.params.get("password") or None

    def redacted(self) -> str:
        return redact(self.params)

    def for_database(self, dbname: str) -> Target:
        """The same server and credentials, another database (scratch and admin work)."""
        return Target({**self.params, "dbname": dbname}, self.source)

    def child_process_args(self) -> tuple[str, dict[str, str]]:
        """A conninfo string for a child's argv, and the environment additions that carry the
        password (PGPASSWORD), so it never appears in a process listing."""
        conninfo = make_conninfo(**{k: v for k, v in self.params.items() if k != "password"})
        return conninfo, ({"PGPASSWORD": self.password} if self.password else {})

    def __str__(self) -> str:
        return self.redacted()


def parse_database_url(url: str) -> dict[str, str]:
    """libpq parameters of a PostgreSQL URL; ValueError (without the password) if it is not one."""
    match = _SCHEME.match(url.strip())
    if not match:
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        raise ValueError(
            f"expected a PostgreSQL URL such as postgresql://user:pass@host:5432/db, "
            f"got scheme {scheme!r}"
        )
    parts = urlsplit("postgresql://" + url.strip()[match.end() :])
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "ssl":
            key, value = "sslmode", _ASYNCPG_SSL.get(value.lower(), value)
        query.append((key, value))
    libpq_url = urlunsplit(parts._replace(query=urlencode(query)))
    try:
        params = conninfo_to_dict(libpq_url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(_strip_password(str(exc).strip(), url)) from None
    return {k: str(v) for k, v in params.items() if v is not None}


def _strip_password(message: str, url: str) -> str:
    password = urlsplit(url).password
    return message.replace(password, "***") if password else message


def redact(params: dict[str, str]) -> str:
    """postgresql://user:***@host:port/db?options, never showing the password."""
    user = quote(params.get("user", ""), safe="")
    auth = f"{user}:***@" if params.get("password") else (f"{user}@" if user else "")
    host = params.get("host", "")
    extra = {k: v for k, v in params.items() if k not in _SHOWN_IN_URL}
    if host.startswith("/"):  # a Unix socket directory is a query option in URL form
        extra = {"host": host, **extra}
        host = ""
    elif ":" in host and "," not in host:
        host = f"[{host}]"
    port = params.get("port", "")
    netloc = f"{auth}{host}" + (f":{port}" if port and host else "")
    if port and not host:
        extra = {**extra, "port": port}
    path = "/" + quote(params.get("dbname", ""), safe="")
    query = ("?" + urlencode(extra, safe="/")) if extra else ""
    return f"postgresql://{netloc}{path}{query}"
