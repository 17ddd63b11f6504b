"""What the primary knows of its standbys: each physical replication slot, whether a standby
streams through it, how far behind it replays, and how much WAL the slot keeps on disk.

A slot keeps every WAL segment its standby has not received, for as long as the slot exists:
a standby that is gone for good fills the primary's disk. db.doctor warns with the size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from pgkura.config.settings import Settings
from pgkura.units import size

# a slot keeping more than this while its standby streams: the standby falls far behind
RETAINED_WARN_BYTES = 1024**3
_SLOT_CHARS = re.compile(r"[^a-z0-9_]")


def slot_name(standby: str) -> str:
    """The replication slot for the standby `standby` (a container or host name): PostgreSQL
    allows lowercase letters, digits and '_', at most 63 of them."""
    return _SLOT_CHARS.sub("_", standby.lower())[:63]


@dataclass(frozen=True)
class Replica:
    """One physical slot on the primary, and the standby streaming through it, if any."""

    slot: str
    active: bool
    wal_status: str | None  # reserved | extended | unreserved | lost
    retained_bytes: int | None  # WAL kept on the primary for this slot
    state: str | None  # pg_stat_replication.state: streaming, catchup, ...; None: not connected
    lag_bytes: int | None  # WAL written on the primary, not replayed on the standby yet
    lag_seconds: float | None  # replay_lag; None once the standby has caught up and is idle

    @property
    def streaming(self) -> bool:
        return self.active and self.state == "streaming"

    def as_json(self) -> dict[str, object]:
        return {"slot": self.slot, "streaming": self.streaming, "state": self.state,
                "wal_status": self.wal_status, "retained_bytes": self.retained_bytes,
                "lag_bytes": self.lag_bytes, "lag_seconds": self.lag_seconds}  # fmt: skip


def lag_text(lag_bytes: int | None, lag_seconds: float | None) -> str:
    """`caught up`, `12.0 KiB behind` or `12.0 KiB, 1.2 s behind` (replay lag)."""
    if lag_bytes is None:
        return "replay position not known yet"
    if lag_bytes <= 0 and not lag_seconds:
        return "caught up"
    if lag_seconds is None:
        return f"{size(lag_bytes)} behind"
    return f"{size(max(lag_bytes, 0))}, {lag_seconds:.1f} s behind"


def describe(replica: Replica) -> str:
    if replica.streaming:
        return f"slot {replica.slot}: streaming, {lag_text(replica.lag_bytes, replica.lag_seconds)}"
    doing = f"{replica.state}, " if replica.active and replica.state else "not streaming, "
    kept = replica.retained_bytes
    return f"slot {replica.slot}: {doing}keeps {size(kept) if kept is not None else 'no'} of WAL"


_REPLICAS = """
SELECT s.slot_name, s.active, s.wal_status,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint,
       r.state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint,
       extract(epoch FROM r.replay_lag)::float8
FROM pg_replication_slots s
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_type = 'physical' AND NOT pg_is_in_recovery()
ORDER BY s.slot_name
"""


def replicas(conn: psycopg.Connection) -> list[Replica]:
    """The primary's physical slots ([] on a standby, which has none of its own here)."""
    return [Replica(*row) for row in conn.execute(_REPLICAS).fetchall()]


def project_findings(settings: Settings, conn: psycopg.Connection) -> list[tuple[str, str]]:
    """findings() for the project's server: the same-host standby's slot is expected while
    db.standby's record says there is one; the old primary and a standby say what they are."""
    from pgkura.replication import roles

    node = roles.node(conn)
    if node.in_recovery:
        return [("ok", f"this server is a standby, streaming from {node.primary_host or '?'}")]
    old = roles.refusal(node, roles.read_promotion(settings), settings.target.redacted(),
                        "any task that writes")  # fmt: skip
    if old:
        return [("fail", old.replace("\n", " "))]
    made = (settings.standby_dir / roles.STANDBY).is_file()
    return list(findings(replicas(conn), slot_name(settings.standby_container) if made else None))


def findings(replicas: list[Replica], expected_slot: str | None) -> Iterator[tuple[str, str]]:
    """db.doctor's (level, detail) on replication; `expected_slot`: the same-host standby's,
    when db.standby made one."""
    slots = {r.slot for r in replicas}
    if expected_slot is not None and expected_slot not in slots:
        yield ("fail", f"the standby's slot {expected_slot} is gone from the primary: the "
               "standby cannot resume streaming → `invoke db.standby --rebuild` clones it "
               "again")  # fmt: skip
    for r in replicas:
        if r.wal_status == "lost":
            yield ("fail", f"slot {r.slot} lost WAL its standby still needs: that standby "
                   "cannot catch up → `invoke db.standby --rebuild` (or drop the slot: "
                   "`invoke db.standby --drop`)")  # fmt: skip
        elif not r.active:
            kept = size(r.retained_bytes or 0)
            yield ("warn", f"slot {r.slot}: no standby streams through it, and it keeps "
                   f"{kept} of WAL on the primary, growing until the disk is full → start the "
                   "standby (`invoke db.standby`), or if it is gone for good drop it and its "
                   "slot: `invoke db.standby --drop`")  # fmt: skip
        elif (r.retained_bytes or 0) > RETAINED_WARN_BYTES:
            yield ("warn", f"{describe(r)}: it keeps {size(r.retained_bytes or 0)} of WAL on "
                   "the primary while it catches up → check the standby's log "
                   "(`docker logs <container>-standby`) and disk")  # fmt: skip
        else:
            yield ("ok", describe(r))
