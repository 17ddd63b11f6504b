"""On a real PostgreSQL 18: what a server says of itself, the old primary refused by every
task that writes once a promotion is recorded, and a slot without its standby reported with
the WAL it keeps."""

from __future__ import annotations

import psycopg
import pytest

from pgkura.backups.take import take_backup
from pgkura.inspection.database import inspect
from pgkura.metrics.facts import collect
from pgkura.migrations.operations import MigrateOptions, migrate
from pgkura.replication import roles
from pgkura.replication.roles import NotPrimaryError, Promotion, node, require_primary
from pgkura.replication.state import findings, replicas


def promoted_beyond(settings, db, timeline: int) -> None:
    me = node(db)
    roles.record_promotion(
        settings,
        Promotion(str(me.system_identifier), timeline, "2026-12-01T02:00:00+00:00", "v2", "v1"),
    )


def test_a_primary_says_what_it_is(db):
    me = node(db)
    assert me.in_recovery is False
    assert me.timeline == 1
    assert me.system_identifier is not None
    assert me.system_identifier.isdigit()


def test_the_old_primary_is_refused_by_backups_and_migrations(settings, db):
    require_primary(settings, settings.target, "a backup")  # nothing recorded: the primary
    promoted_beyond(settings, db, 2)
    assert oct((settings.standby_dir / roles.PROMOTED).stat().st_mode & 0o777) == "0o600"
    with pytest.raises(NotPrimaryError, match="is the old primary"):
        take_backup(settings, output=settings.root / "b.sql.gz", log=lambda _: None)
    assert not (settings.root / "b.sql.gz").exists()
    with pytest.raises(NotPrimaryError, match=r"invoke db\.standby --rebuild"):
        migrate(settings, MigrateOptions(), lambda _: None)


def test_the_promoted_primary_itself_is_accepted(settings, db):
    promoted_beyond(settings, db, 1)  # this server is on the promotion's timeline
    require_primary(settings, settings.target, "a backup")


def test_a_slot_without_its_standby_is_reported_with_the_wal_it_keeps(settings, db):
    db.execute("SELECT pg_create_physical_replication_slot('it_gone_standby', true)")
    try:
        found = [r for r in replicas(db) if r.slot == "it_gone_standby"]
        assert len(found) == 1
        assert found[0].active is False
        assert found[0].retained_bytes is not None
        ((level, detail),) = list(findings(found, None))
        assert level == "warn"
        assert "keeps" in detail
        report = inspect(settings.target)
        rows = report.to_dict()["sections"]["replication"]
        assert [r["slot"] for r in rows if r["slot"] == "it_gone_standby"] == ["it_gone_standby"]
        assert report.facts["in_recovery"] is False
        assert any("it_gone_standby" in a.what for a in report.attention)
        families = {f.name for f in collect(settings).families}
        assert "pgkura_replication_slot_retained_bytes" in families
        assert "pgkura_standby_streaming" in families
    finally:
        db.execute("SELECT pg_drop_replication_slot('it_gone_standby')")


def test_a_role_without_rights_on_pg_control_still_gets_the_recovery_check(pg_server, database):
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS it_plain")
        conn.execute("CREATE ROLE it_plain LOGIN PASSWORD 'it-plain-pw'")
        try:
            url = f"postgresql://it_plain:it-plain-pw@127.0.0.1:{pg_server.port}/{database}"
            with psycopg.connect(url, autocommit=True) as plain:
                me = node(plain)
            assert me.in_recovery is False
        finally:
            conn.execute("DROP ROLE it_plain")
