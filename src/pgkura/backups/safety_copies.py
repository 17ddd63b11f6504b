"""Safety copies: before a restore replaces a database, a copy of it on the same server, and
undoing a restore by swapping the names back.

`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` copies the files (seconds, where a safety
dump costs as much as pg_dump). A template copy takes neither the owner, nor the settings made
with `ALTER DATABASE … SET`, nor the database's GRANTs: those are carried over here, so that
swapping back gives the database exactly as it was. A copy needs the database to itself and the
right to create databases; where either is missing the caller falls back to a safety backup
file. pgkura never ends the application's sessions for a copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from pgkura.config.settings import Settings
from pgkura.connect.connection import session_lost
from pgkura.connect.databases import admin_connection, other_sessions
from pgkura.errors import PgkuraError
from pgkura.retention import Policy, reasons_to_keep

Log = Callable[[str], None]
COMMENT = "pgkura safety copy of {db}: {why}"
_NAME_MAX = 63  # bytes
_STAMP = re.compile(r"_(?:before_restore|replaced)_(\d{8}_\d{6})$")


@dataclass(frozen=True)
class SafetyCopy:
    name: str
    taken_at: datetime
    size: int


def copy_name(db: str, kind: str, now: datetime | None = None) -> str:
    """`<db>_<kind>_YYYYMMDD_HHMMSS`, the database's name shortened (whole characters) to fit
    PostgreSQL's 63 bytes."""
    suffix = f"_{kind}_{(now or datetime.now()):%Y%m%d_%H%M%S}"
    room = _NAME_MAX - len(suffix.encode())
    return db.encode()[:room].decode(errors="ignore") + suffix


def take(settings: Settings, db: str, why: str, log: Log) -> str | None:
    """A copy of `db` as it is now, or None (the reason logged) when one cannot be made."""
    others = other_sessions(settings, db)
    if others:
        log(f"{others} other session(s) are connected to {db}; a database copy needs none, so "
            "a safety backup file is taken instead")  # fmt: skip
        return None
    copy = copy_name(db, "before_restore")
    try:
        with admin_connection(settings) as conn:
            _copy(conn, db, copy, COMMENT.format(db=db, why=why))
    except psycopg.Error as exc:
        if session_lost(exc):
            raise  # the server went away: no backup file can be taken either
        reason = (exc.diag.message_primary or str(exc)).strip()
        log(f"cannot copy {db} ({reason}); a safety backup file is taken instead")
        _drop_quietly(settings, copy)
        return None
    return copy


def _copy(conn: psycopg.Connection, db: str, copy: str, comment: str) -> None:
    source, target = sql.Identifier(db), sql.Identifier(copy)
    row = conn.execute(
        "SELECT d.oid, pg_get_userbyid(d.datdba), d.datacl IS NOT NULL FROM pg_database d "
        "WHERE d.datname = %s",
        (db,),
    ).fetchone()
    if row is None:
        raise PgkuraError(f"database {db} does not exist")
    oid, owner, own_acl = row
    conn.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {} STRATEGY FILE_COPY").format(
            target, source, sql.Identifier(owner)
        )
    )
    settings = conn.execute(
        "SELECT unnest(setconfig) FROM pg_db_role_setting WHERE setdatabase = %s AND setrole = 0",
        (oid,),
    ).fetchall()
    for (assignment,) in settings:
        name, _, value = str(assignment).partition("=")
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                target, sql.Identifier(name), sql.Literal(value)
            )
        )
    if own_acl:  # default privileges otherwise, as the copy has them already
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(target))
        grants = conn.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, "
            "a.privilege_type, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a "
            "WHERE d.datname = %s",
            (db,),
        ).fetchall()
        for grantee, privilege, grantable in grants:
            who = sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC")
            conn.execute(
                sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                    sql.SQL(privilege),
                    target,
                    who,
                    sql.SQL(" WITH GRANT OPTION" if grantable else ""),
                )
            )
    conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(target, sql.Literal(comment)))


def _drop_quietly(settings: Settings, name: str) -> None:
    try:
        with admin_connection(settings) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except psycopg.Error:
        pass  # nothing was made, or it cannot be dropped either: the name says what it is


def copies(settings: Settings, db: str) -> list[SafetyCopy]:
    """The safety copies of `db` on the server, oldest first."""
    prefix = COMMENT.format(db=db, why="")
    with admin_connection(settings) as conn:
        rows = conn.execute(
            "SELECT datname, pg_database_size(oid) FROM pg_database "
            "WHERE left(shobj_description(oid, 'pg_database'), %s) = %s",
            (len(prefix), prefix),
        ).fetchall()
    found = []
    for name, size in rows:
        match = _STAMP.search(name)
        if match:
            found.append(SafetyCopy(name, datetime.strptime(match[1], "%Y%m%d_%H%M%S"), size))
    return sorted(found, key=lambda c: (c.taken_at, c.name))


def asked_policy(policy: Policy) -> Policy:
    """What `db.prune` keeps of the safety copies: the retention rules, or where none is set
    the newest copy alone (what `db.restore latest --safety` puts back), since each copy takes
    the database's whole space on the server and a person asked to prune."""
    return policy if policy.active else Policy(last=1)


def retention_plan(
    settings: Settings, db: str, policy: Policy
) -> list[tuple[SafetyCopy, list[str]]]:
    """The safety copies of `db`, oldest first, each with why `policy` keeps it (empty: it
    would be dropped); the same rules as for safety backup files."""
    found = copies(settings, db)
    return list(zip(found, reasons_to_keep([c.taken_at for c in found], policy), strict=True))


def prune(settings: Settings, db: str, policy: Policy) -> list[str]:
    """Drop the safety copies of `db` that the retention policy does not keep (an inactive
    policy drops nothing); the names dropped. A copy with sessions connected is left for the
    next time (DROP DATABASE would wait for no one: it fails)."""
    dropped = []
    with admin_connection(settings) as conn:
        for copy, why in retention_plan(settings, db, policy):
            if why:
                continue
            try:
                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(copy.name)))
            except psycopg.errors.ObjectInUse:
                continue
            dropped.append(copy.name)
    return dropped


def swap_back(settings: Settings, db: str, copy: SafetyCopy) -> str:
    """Make `copy` the database `db` again; `db` as it is now is kept under a new name (itself
    a safety copy, so the undo can be undone). Refused while sessions are connected."""
    for name in (db, copy.name):
        others = other_sessions(settings, name)
        if others:
            raise PgkuraError(
                f"{others} session(s) are connected to {name}; renaming a database needs none. "
                "Nothing was changed.\n→ stop the application, then run this again"
            )
    replaced = copy_name(db, "replaced")
    comment = COMMENT.format(db=db, why=f"what it held before {copy.name} was put back")
    with admin_connection(settings) as conn, conn.transaction():
        rename = sql.SQL("ALTER DATABASE {} RENAME TO {}")
        conn.execute(rename.format(sql.Identifier(db), sql.Identifier(replaced)))
        conn.execute(rename.format(sql.Identifier(copy.name), sql.Identifier(db)))
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(replaced), sql.Literal(comment)
            )
        )
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS NULL").format(sql.Identifier(db)))
    return replaced
