"""Connection targets: DATABASE_URL parsing, libpq parameters, and password-free rendering.

libpq itself parses the URL (percent-decoding, multiple hosts, query options), so what we
accept is exactly what psql and pg_dump accept; we only strip driver suffixes such as
`postgresql+asyncpg://` that application frameworks add. psycopg is imported where libpq is
needed, not at import time: a backup of the project's container never needs it.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from pgkura.validation import SafeValueError

_SCHEME = re.compile(r"^(postgres|postgresql)(\+[a-z0-9_]+)?://", re.IGNORECASE)
# Frameworks built on asyncpg spell the TLS option `ssl=`; libpq wants `sslmode=`.
_ASYNCPG_SSL = {"true": "require", "1": "require", "false": "disable", "0": "disable"}
_SHOWN_IN_URL = {"host", "port", "user", "password", "dbname"}
_SECRET_OPTIONS = {"sslpassword"}  # the client key's passphrase: shown as *** like the password
_SAFE_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,30}$")
_OPTION_NAME = re.compile(r"^[a-z_]{1,40}$")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class TargetKind(enum.Enum):
    """Where the server is: the project's own container, the embedded engine's server, or a
    server named by DATABASE_URL."""

    CONTAINER = "container"
    EMBEDDED = "embedded"
    URL = "DATABASE_URL"


@dataclass(frozen=True)
class Target:
    """Where a task connects: libpq parameters plus a description that is safe to print.

    `credentials` says where the password comes from, for remedies ("POSTGRES_PASSWORD in
    /srv/app/.env")."""

    params: dict[str, str] = field(repr=False)
    kind: TargetKind
    credentials: str = "DATABASE_URL"

    @property
    def is_container(self) -> bool:
        return self.kind is TargetKind.CONTAINER

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
        return Target({**self.params, "dbname": dbname}, self.kind, self.credentials)

    def child_process_args(self) -> tuple[str, dict[str, str]]:
        """A conninfo string for a child's argv, and the environment additions that carry the
        password (PGPASSWORD), so it never appears in a process listing."""
        from psycopg.conninfo import make_conninfo

        conninfo = make_conninfo(**{k: v for k, v in self.params.items() if k != "password"})
        return conninfo, ({"PGPASSWORD": self.password} if self.password else {})

    def __str__(self) -> str:
        return self.redacted()


def parse_database_url(url: str) -> dict[str, str]:
    """libpq parameters of a PostgreSQL URL; ValueError if it is not one.

    No message ever contains the URL or any part of it that could hold the password: errors
    name the part that is wrong, not its value."""
    text = url.strip()
    match = _SCHEME.match(text)
    if not match:
        scheme = text.split("://", 1)[0] if "://" in text else ""
        shown = f"scheme {scheme!r}" if _SAFE_SCHEME.match(scheme) else "no postgresql:// scheme"
        raise SafeValueError(
            f"expected a PostgreSQL URL such as postgresql://user:pass@host:5432/db, got {shown}"
        )
    rest = text[match.end() :]
    if _PERCENT.search(rest):
        part = _part_with_bad_escape(rest)
        raise SafeValueError(f"a '%' in the {part} is not followed by two hex digits; write %25")
    unparsable = SafeValueError(
        "libpq cannot parse it (check the host, the port and any [IPv6] brackets; "
        "percent-encode special characters in the user name and password)"
    )
    try:
        parts = urlsplit("postgresql://" + rest)
    except ValueError:
        raise unparsable from None
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "ssl":
            key, value = "sslmode", _ASYNCPG_SSL.get(value.lower(), value)
        query.append((key, value))
    unknown = sorted({key for key, _ in query} - _libpq_options())
    if unknown:
        secret = unquote(parts.password or "")
        names = [
            repr(k)
            if _OPTION_NAME.match(k) and not (secret and (secret in k or k in secret))
            else "(not shown)"
            for k in unknown
        ]
        raise SafeValueError(f"unknown connection option(s) {', '.join(names)}")
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(urlunsplit(parts._replace(query=urlencode(query))))
    except (ValueError, psycopg.ProgrammingError):
        raise unparsable from None
    return {k: str(v) for k, v in params.items() if v is not None}


@functools.cache
def _libpq_options() -> frozenset[str]:
    from psycopg import pq

    return frozenset(opt.keyword.decode() for opt in pq.Conninfo.get_defaults())


def _part_with_bad_escape(rest: str) -> str:
    """Which part of `user:password@host/db?query` has a broken %-escape (never its text)."""
    authority, _, path = rest.partition("/")
    userinfo, at, _host = authority.rpartition("@")
    if at and _PERCENT.search(userinfo):
        return "password" if _PERCENT.search(userinfo.partition(":")[2]) else "user name"
    if _PERCENT.search(path.partition("?")[0]):
        return "database name"
    return "query options" if "?" in path else "host"


def _shown(part: str) -> str:
    """A URL part as people read it: letters of any script stay as they are (営業担当), and
    what a URL cannot hold (`/`, `@`, `%`, spaces, controls) is percent-encoded."""
    return "".join(ch if ord(ch) > 127 and ch.isprintable() else quote(ch, safe="") for ch in part)


def redact(params: dict[str, str]) -> str:
    """postgresql://user:***@host:port/db?options, never showing the password."""
    user = _shown(params.get("user", ""))
    auth = f"{user}:***@" if params.get("password") else (f"{user}@" if user else "")
    host = params.get("host", "")
    extra = {k: "***" if k in _SECRET_OPTIONS else v
             for k, v in params.items() if k not in _SHOWN_IN_URL}  # fmt: skip
    if host.startswith("/"):  # a Unix socket directory is a query option in URL form
        extra = {"host": host, **extra}
        host = ""
    elif ":" in host and "," not in host:
        host = f"[{host}]"
    port = params.get("port", "")
    netloc = f"{auth}{host}" + (f":{port}" if port and host else "")
    if port and not host:
        extra = {**extra, "port": port}
    path = "/" + _shown(params.get("dbname", ""))
    query = ("?" + urlencode(extra, safe="/*")) if extra else ""
    return f"postgresql://{netloc}{path}{query}"
