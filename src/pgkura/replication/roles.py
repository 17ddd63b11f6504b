"""Which node is the primary: what db.standby and db.promote recorded, and the refusal of a
standby or of a demoted old primary as the target of a task that writes (backups, PITR,
migrations).

A standby is recognised by the server itself (`pg_is_in_recovery()`); an old primary by the
record: a server of the promoted cluster (same system identifier) on an older timeline than
the promotion's was left behind by it, and writing there would split the data in two.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pgkura.config.settings import Settings
from pgkura.dsn import Target
from pgkura.errors import PgkuraError
from pgkura.private_files import write_private

if TYPE_CHECKING:  # psycopg is imported where a connection is made: a backup through
    import psycopg  # `docker exec` never needs it

PROMOTED = "promoted.json"  # the last promotion: cluster, timeline, volumes
STANDBY = "standby.json"  # the same-host standby db.standby created
PASSWORD = "replication.password"  # noqa: S105 - the file holding it, owner-only
ROLE = "pgkura_replicator"


class NotPrimaryError(PgkuraError):
    """The target is a standby or a demoted old primary: nothing is written there."""


@dataclass(frozen=True)
class Promotion:
    system_identifier: str
    timeline: int
    promoted_at: str  # ISO 8601, UTC
    volume: str  # the promoted node's volume, the project's data since
    demoted_volume: str  # the old primary's, left as it was


@dataclass(frozen=True)
class Node:
    """What a server says of itself."""

    in_recovery: bool
    system_identifier: str | None  # None: not allowed to read pg_control (a managed server)
    timeline: int | None
    primary_host: str | None = None  # a standby's: where it streams from


def write_record(path: Path, text: str) -> None:
    """A file of PGKURA_STANDBY_DIR (it holds the replication password): the directory made
    owner-only, the file written whole and never readable by others."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, text)


def write_json(path: Path, data: object) -> None:
    write_record(path, json.dumps(data, indent=2) + "\n")


def read_promotion(settings: Settings) -> Promotion | None:
    path = settings.standby_dir / PROMOTED
    try:
        return Promotion(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise PgkuraError(
            f"{path} is not pgkura's record of a promotion ({exc}).\n→ restore it from the "
            "copy you keep, or delete it if no standby was ever promoted here"
        ) from None


def record_promotion(settings: Settings, promotion: Promotion) -> None:
    write_json(settings.standby_dir / PROMOTED, asdict(promotion))


def replication_in_use(settings: Settings) -> bool:
    """Whether pgkura made a standby or promoted one here: the project's own container may
    then be a standby or an old primary, and is asked before anything is written."""
    return any((settings.standby_dir / name).is_file() for name in (PROMOTED, STANDBY))


_NODE = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
       (SELECT sender_host FROM pg_stat_wal_receiver)
"""
_CONTROL = "SELECT system_identifier::text FROM pg_control_system()"


def node(conn: psycopg.Connection) -> Node:
    import psycopg

    in_recovery, timeline, sender = conn.execute(_NODE).fetchall()[0]
    try:
        control = conn.execute(_CONTROL).fetchone()
        identifier = str(control[0]) if control else None
    except psycopg.errors.InsufficientPrivilege:
        identifier = None  # a managed server's role: the recovery check is all we can do
    return Node(bool(in_recovery), identifier, timeline, sender)


def refusal(node: Node, promotion: Promotion | None, shown: str, what: str) -> str | None:
    """Why `what` must not run against `shown` (the target without its password), or None."""
    if node.in_recovery:
        streams = f" (it streams from {node.primary_host})" if node.primary_host else ""
        return (
            f"{shown} is a standby{streams}: it is read-only and follows its primary, so "
            f"{what} does not run here.\n→ run it against the primary"
            + (f", {node.primary_host}" if node.primary_host else "")
            + " (the project's own server unless DATABASE_URL/PGKURA_MIGRATION_URL name "
            "another)"
        )
    if (
        promotion is not None
        and node.system_identifier == promotion.system_identifier
        and node.timeline is not None
        and node.timeline < promotion.timeline
    ):
        return (
            f"{shown} is the old primary: pgkura promoted its standby to timeline "
            f"{promotion.timeline} on {promotion.promoted_at} (volume {promotion.volume}), and "
            f"this server is still on timeline {node.timeline}; writing here would split the "
            f"data in two, so {what} does not run here.\n→ point the project at the new "
            f"primary (PGKURA_VOLUME={promotion.volume}, or its address), and rebuild this one "
            "as a standby of it: `invoke db.standby --rebuild`"
        )
    return None


def check_primary(conn: psycopg.Connection, settings: Settings, target: Target, what: str) -> None:
    """NotPrimaryError unless the server behind `conn` is the primary."""
    why = refusal(node(conn), read_promotion(settings), target.redacted(), what)
    if why:
        raise NotPrimaryError(why)


def require_primary(settings: Settings, target: Target, what: str) -> None:
    """check_primary on a connection of its own; the project's own container is asked only
    once pgkura made a standby or promoted one (otherwise it cannot be either)."""
    if target.is_container and not replication_in_use(settings):
        return
    from pgkura.connect.connection import connect

    with connect(target, purpose="primary check") as conn:
        check_primary(conn, settings, target, what)
