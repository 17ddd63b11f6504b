"""Required extensions (vector, pg_bigm): available on the server, installed in the database."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgkura.config.settings import DEFAULT_BASE_IMAGE
from pgkura.connect.connection import connect
from pgkura.dsn import Target, TargetKind
from pgkura.errors import PgkuraError

# pgvector 0.8.2-0.8.4 fixed a buffer overflow in parallel HNSW builds and index corruption and
# errors during HNSW vacuuming (pgvector's CHANGELOG).
PGVECTOR_SAFE = (0, 8, 4)


@dataclass(frozen=True)
class ExtensionStatus:
    name: str
    available: str | None  # the version CREATE EXTENSION would install
    installed: str | None

    @property
    def state(self) -> str:
        if self.installed:
            return "installed"
        return "available" if self.available else "not available"


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def statuses(conn: psycopg.Connection, names: tuple[str, ...]) -> list[ExtensionStatus]:
    rows = conn.execute(
        "SELECT name, default_version, installed_version FROM pg_available_extensions "
        "WHERE name = ANY(%s)",
        (list(names),),
    ).fetchall()
    found = {name: (available, installed) for name, available, installed in rows}
    return [ExtensionStatus(n, *found.get(n, (None, None))) for n in names]


def check(target: Target, names: tuple[str, ...]) -> list[ExtensionStatus]:
    with connect(target, purpose="extensions") as conn:
        return statuses(conn, names)


def ensure(target: Target, names: tuple[str, ...]) -> list[ExtensionStatus]:
    """CREATE EXTENSION IF NOT EXISTS for each, then verify; PgkuraError naming what is missing."""
    with connect(target, purpose="extensions") as conn:
        missing = [s.name for s in statuses(conn, names) if not s.available]
        if missing:
            raise PgkuraError(unavailable_message(missing, target.kind))
        for name in names:
            try:
                conn.execute(
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name))
                )
            except psycopg.errors.InsufficientPrivilege as exc:
                raise PgkuraError(
                    f"CREATE EXTENSION {name} was refused: {exc.diag.message_primary}.\n"
                    "→ connect as the database owner or a role allowed to create extensions "
                    "(on managed servers, the provider's admin role)"
                ) from None
        result = statuses(conn, names)
    not_installed = [s.name for s in result if not s.installed]
    if not_installed:
        raise PgkuraError(
            f"extensions still not installed after CREATE: {', '.join(not_installed)}"
        )
    return result


def unavailable_message(names: list[str], kind: TargetKind) -> str:
    remedy = {
        TargetKind.CONTAINER: "the image was built without them: rebuild with `invoke "
        "docker.build` (pg_bigm needs the full target, PGKURA_BUILD_TARGET=full)",
        TargetKind.EMBEDDED: "the embedded server has pgvector; pg_bigm is built for it from "
        "PG_BIGM_SOURCE where a C compiler and make are present (`python -m "
        "pgkura.extensions.bigm_build` says why not), then `invoke db.reset`; or set "
        "PGKURA_EXTENSIONS=vector",
    }.get(kind, "the managed server does not offer them; enable them in the provider's "
          "settings (e.g. an extension allow-list) or use a server that ships them")  # fmt: skip
    return f"extension(s) not available on the server: {', '.join(names)}.\n→ {remedy}"


def pgvector_warning(items: list[ExtensionStatus]) -> str | None:
    """A warning when the installed (or to-be-installed) pgvector predates the HNSW fixes."""
    for s in items:
        version = s.installed or s.available
        if s.name == "vector" and version and version_tuple(version) < PGVECTOR_SAFE:
            return (
                f"pgvector {version} is older than {'.'.join(map(str, PGVECTOR_SAFE))}: "
                "0.8.2-0.8.4 fixed a buffer overflow in parallel HNSW builds and index "
                "corruption during HNSW vacuuming. Move PG_BASE_IMAGE to a newer pgvector "
                f"image (the default is {DEFAULT_BASE_IMAGE}), rebuild, and run "
                "ALTER EXTENSION vector UPDATE"
            )
    return None
