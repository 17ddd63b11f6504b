"""db.inspect on a real server, with what it reports produced by the test itself: a slow
statement, a blocked query and its blocker, duplicate indexes, a sequence near its limit, and
size snapshots; the statistics extension missing; the JSON form."""

from __future__ import annotations

import json
import threading
import time

import psycopg

from pgkura.clusters.throwaway import bin_dir
from tests.conftest import run_invoke


def cli(tmp_path, url: str, *args: str):
    env = {"DATABASE_URL": url, "PGKURA_PG_BIN": str(bin_dir()),
           "PGKURA_ENV_FILE": str(tmp_path / "none.env"),
           "PGKURA_BACKUP_DIR": str(tmp_path / "backups")}  # fmt: skip
    return run_invoke("db.inspect", *args, env=env, cwd=tmp_path)


def test_what_the_database_is_doing_and_what_needs_attention(pg_server, database, tmp_path):
    url = pg_server.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, note text)")
        conn.execute(
            "INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 500) g"
        )
        conn.execute("CREATE INDEX orders_note ON orders (note)")
        conn.execute("CREATE INDEX orders_note_again ON orders (note)")
        conn.execute("CREATE SEQUENCE tickets MAXVALUE 100")
        conn.execute("SELECT setval('tickets', 90)")
        conn.execute("SELECT pg_sleep(0.3)")
    blocker = psycopg.connect(url)
    blocker.execute(
        "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"
    )  # held: the transaction stays open
    waiting = threading.Thread(
        target=lambda: psycopg.connect(url, autocommit=True).execute("SELECT count(*) FROM orders")
    )
    waiting.start()
    try:
        time.sleep(0.5)
        shown = cli(tmp_path, url)
    finally:
        blocker.rollback()
        blocker.close()
        waiting.join(timeout=30)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "== connections (" in out
    assert "SELECT pg_sleep($1)" in out  # normalised by pg_stat_statements
    assert "SELECT count(*) FROM orders" in out  # the blocked query
    assert "waits for pid" in out
    assert "AccessShareLock" in out
    assert "duplicate indexes public.orders_note = public.orders_note_again" in out
    assert "sequence public.tickets is 90.00 % used" in out
    assert out.startswith("verdict: ")  # the judgement first, the evidence after
    assert " bytes" not in out
    assert " MB" not in out
    assert " kB" not in out
    assert "\x1b[" not in out  # piped: no colour


def test_without_statement_statistics_it_says_how_to_enable_them(pg_server, database, tmp_path):
    shown = cli(tmp_path, pg_server.url(database))
    assert shown.returncode == 0, shown.stderr
    assert "CREATE EXTENSION pg_stat_statements; in this database (the server must preload" in (
        shown.stdout
    )


def test_json_and_growth_from_snapshots(pg_server, database, tmp_path):
    url = pg_server.url(database)
    first = cli(tmp_path, url, "--json", "--snapshot")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["facts"]["database_bytes"] > 0
    assert {"connections", "largest tables", "transaction ID age", "size over time"} <= set(
        report["sections"]
    )
    assert len(report["sections"]["size over time"]) == 1
    # the notes that say why a section reads as it does come along, and the verdict
    assert (
        report["notes"]["size over time"] == "snapshots span less than an hour: no growth rate yet"
    )
    assert report["notes"]["largest tables"].startswith("database size ")
    assert report["verdict"] in {"ok", "warn"}
    again = json.loads(cli(tmp_path, url, "--json", "--snapshot").stdout)
    assert len(again["sections"]["size over time"]) == 2
