"""What db.doctor reads about archiving, from a real PostgreSQL 18 (the throwaway server
runs without archiving, like a container started before PGKURA_PITR=on)."""

from __future__ import annotations

import psycopg

from pgkura.engines.docker.pgbackrest import archiver, archiving_finding


def test_the_archiver_as_the_server_reports_it(db: psycopg.Connection):
    state = archiver(db)
    assert state.mode == "off"
    assert len(state.current_wal) == 24
    assert state.segment_bytes == 16 * 2**20
    assert state.archived_at is None
    assert not state.failing
    assert archiving_finding(state)[0] == "fail"
