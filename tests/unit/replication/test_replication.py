"""The standby's pure rules: slot names, lag as a person reads it, db.doctor's findings, and
which servers a task that writes refuses."""

from __future__ import annotations

import os
import re

from hypothesis import given
from hypothesis import strategies as st

from pgkura.config.env_file import set_value
from pgkura.config.settings import default_standby_volume, load_settings
from pgkura.replication.roles import Node, Promotion, refusal
from pgkura.replication.state import RETAINED_WARN_BYTES, Replica, findings, lag_text, slot_name

PROMOTION = Promotion(
    "7400000000000000001", 2, "2026-12-01T02:00:00+00:00", "p_standby", "p_pgdata"
)


@given(st.text(min_size=1, max_size=200))
def test_slot_names_are_what_postgresql_accepts(name):
    assert re.fullmatch(r"[a-z0-9_]{1,63}", slot_name(name))


def test_slot_name_of_the_default_standby():
    assert slot_name("pgkura-postgres-standby") == "pgkura_postgres_standby"


def test_lag_as_a_person_reads_it():
    assert lag_text(0, None) == "caught up"
    assert lag_text(2048, None) == "2.0 KiB behind"
    assert lag_text(2048, 1.25) == "2.0 KiB, 1.2 s behind"
    assert lag_text(None, None) == "replay position not known yet"


def replica(**changes) -> Replica:
    fields = {"slot": "s", "active": True, "wal_status": "reserved", "retained_bytes": 100,
              "state": "streaming", "lag_bytes": 0, "lag_seconds": None, **changes}  # fmt: skip
    return Replica(**fields)


def test_findings_streaming_ok_gone_standby_warns_with_the_size_lost_fails():
    assert list(findings([replica()], "s")) == [("ok", "slot s: streaming, caught up")]
    ((level, detail),) = findings(
        [replica(active=False, state=None, retained_bytes=3 * 1024**2)], "s"
    )
    assert level == "warn"
    assert "3.0 MiB" in detail
    assert "invoke db.standby --drop" in detail
    ((level, detail),) = findings([replica(wal_status="lost")], None)
    assert level == "fail"
    assert "--rebuild" in detail
    ((level, detail),) = findings([replica(retained_bytes=RETAINED_WARN_BYTES + 1)], None)
    assert level == "warn"


def test_a_standby_whose_slot_is_gone_is_named_with_the_remedy():
    ((level, detail),) = findings([], "pgkura_postgres_standby")
    assert level == "fail"
    assert "pgkura_postgres_standby is gone" in detail
    assert "invoke db.standby --rebuild" in detail


def test_a_standby_is_refused_naming_its_primary():
    why = refusal(Node(True, "1", None, "/var/run/pgkura-primary"), None, "host=x", "a backup")
    assert why is not None
    assert "host=x is a standby" in why
    assert "run it against the primary, /var/run/pgkura-primary" in why


def test_the_old_primary_is_refused_the_new_one_and_other_clusters_are_not():
    old = Node(False, PROMOTION.system_identifier, 1)
    why = refusal(old, PROMOTION, "host=x", "migrations")
    assert why is not None
    assert "is the old primary" in why
    assert "PGKURA_VOLUME=p_standby" in why
    assert "invoke db.standby --rebuild" in why
    assert refusal(Node(False, PROMOTION.system_identifier, 2), PROMOTION, "x", "m") is None
    assert refusal(Node(False, "another cluster", 1), PROMOTION, "x", "m") is None
    assert refusal(Node(False, None, None), PROMOTION, "x", "m") is None  # no pg_control rights
    assert refusal(old, None, "x", "m") is None  # nothing was promoted here


def test_the_standby_volume_is_the_other_of_the_pair():
    assert default_standby_volume("p", "p_pgdata") == "p_standby"
    assert default_standby_volume("p", "p_standby") == "p_pgdata"


def test_promotion_swaps_the_volumes_in_the_settings_file(tmp_path):
    env = tmp_path / ".env"
    env.write_text("POSTGRES_PASSWORD=x\nPGKURA_VOLUME=p_pgdata\n")
    os.chmod(env, 0o600)
    environ = {"PGKURA_COMPOSE_PROJECT": "p"}
    settings = load_settings(tmp_path, environ)
    assert (settings.volume, settings.standby_volume) == ("p_pgdata", "p_standby")
    set_value(settings, "PGKURA_VOLUME", "p_standby", "swapped")
    set_value(settings, "PGKURA_STANDBY_VOLUME", "p_pgdata", "swapped")
    after = load_settings(tmp_path, environ)
    assert (after.volume, after.standby_volume) == ("p_standby", "p_pgdata")
    assert env.stat().st_mode & 0o777 == 0o600
    assert env.read_text().count("PGKURA_VOLUME=") == 1


def test_pg_basebackup_progress_reaches_the_meter_and_its_errors_are_kept():
    import io

    from pgkura.progress import Reporter
    from pgkura.replication.standby import _follow

    out = io.StringIO()
    reporter = Reporter(out, settle=0, every=0, heartbeat=None)
    said = b"\r 1024/4096 kB (25%), 0/1 tablespace\r 4096/4096 kB (100%), 1/1 tablespace\n"
    said += b"pg_basebackup: error: could not write to file: No space left on device\n"
    with reporter.meter("standby clone") as meter:
        errors = _follow(io.BytesIO(said), meter)
        assert (meter.done, meter.total) == (4096 * 1024, 4096 * 1024)
    assert errors == "pg_basebackup: error: could not write to file: No space left on device"
    assert "standby clone" in out.getvalue()
