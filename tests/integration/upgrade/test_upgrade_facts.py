"""What db.upgrade compares before and after the move, read from a real PostgreSQL 18: a large
object lost, changed past its first MiB, or stripped of its comment or owner is noticed; the
same data written another way (as a restore writes it) is not."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from pgkura.clusters.throwaway import bin_dir
from pgkura.upgrade.major import FACTS_SQL, Facts, database_facts

from ..backups.test_backup_restore import LARGE_OBJECTS

ITEM = "large-objects (all)"


def facts(url: str) -> Facts:
    argv = [str(bin_dir() / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"]
    out = subprocess.run(argv, input=FACTS_SQL, capture_output=True, text=True, check=True)
    return Facts(databases={"app": database_facts(out.stdout)})


@pytest.fixture
def url(pg_server, database) -> str:
    url = pg_server.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LARGE_OBJECTS)
    return url


@pytest.mark.parametrize(
    "change",
    [
        "SELECT lo_unlink(70001)",
        "SELECT lo_put(70002, 1100000, 'x'::bytea)",  # one byte, in the second MiB
        "SELECT lo_put(70003, 0, 'x'::bytea)",  # the empty one grows
        "COMMENT ON LARGE OBJECT 70002 IS NULL",
        "ALTER LARGE OBJECT 70002 OWNER TO CURRENT_USER",
        "GRANT SELECT ON LARGE OBJECT 70001 TO pgkura_lo_owner",
    ],
)
def test_a_lost_or_changed_large_object_is_a_difference(url, change):
    before = facts(url)
    assert before.databases["app"][ITEM].startswith("3 ")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(change)
    (difference,) = before.differences(facts(url))
    assert difference.startswith(f"app: {ITEM}: ")


def test_a_large_object_with_holes_equals_the_same_bytes_written_whole(url):
    """lo_put past the end leaves pages out; a restore writes every page."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT lo_create(70004); SELECT lo_put(70004, 20000, 'end'::bytea)")
        sparse = facts(url)
        conn.execute("SELECT lo_unlink(70004); SELECT lo_from_bytea(70004,"
                     " decode(repeat('00', 20000), 'hex') || 'end'::bytea)")  # fmt: skip
    assert sparse.differences(facts(url)) == []
