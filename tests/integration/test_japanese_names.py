"""Japanese names where people type them: a database, a role and tables named in Japanese go
through every data task (migrate, status, backup, backups, verify with a restore test,
restore, inspect, SQLite import), on a real server, with the names intact."""

from __future__ import annotations

import sqlite3
from urllib.parse import quote

import psycopg
from psycopg import sql

from pgkura.clusters.throwaway import bin_dir
from tests.conftest import run_invoke

DATABASE = "販売データ"
ROLE = "営業担当"
PASSWORD = "パスワード-Secret-1"


def test_every_data_task_with_japanese_names(pg_server, tmp_path, write_migration):
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
            sql.Identifier(ROLE), sql.Literal(PASSWORD)))  # fmt: skip
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(DATABASE), sql.Identifier(ROLE)))  # fmt: skip
    try:
        url = (f"postgresql://{quote(ROLE, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:"
               f"{pg_server.port}/{quote(DATABASE, safe='')}")  # fmt: skip
        env = {"DATABASE_URL": url, "PGKURA_PG_BIN": str(bin_dir()),
               "PGKURA_ENV_FILE": str(tmp_path / "none.env"),
               "PGKURA_BACKUP_DIR": str(tmp_path / "バックアップ"),
               "PGKURA_MIGRATIONS_DIR": str(write_migration.directory)}  # fmt: skip
        write_migration("001_顧客.sql", 'CREATE TABLE "顧客" ("氏名" text NOT NULL);\n'
                        'INSERT INTO "顧客" VALUES (\'山田太郎\'), (\'佐藤花子\');\n')  # fmt: skip

        def run(*args: str):
            result = run_invoke(*args, env=env, cwd=tmp_path)
            assert result.returncode == 0, result.stdout + result.stderr
            assert PASSWORD not in result.stdout + result.stderr
            return result

        assert "applied 001_顧客" in run("db.migrate", "--no-schema").stdout
        status = run("db.status").stdout
        assert f"target: postgresql://{ROLE}:***@127.0.0.1:{pg_server.port}/{DATABASE}" in status
        assert "顧客" in status
        assert ROLE in status  # applied_by
        backup = run("db.backup").stdout
        assert f"{DATABASE}_" in backup  # the file keeps the database's name as typed
        assert DATABASE in run("db.backups").stdout
        assert (
            "restore test: 2 tables, 3 rows" in run("db.verify", "latest", "--restore-test").stdout
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute('DELETE FROM "顧客"')
        run("db.restore", "latest", "--yes")
        with psycopg.connect(url) as conn:
            names = sorted(r[0] for r in conn.execute('SELECT "氏名" FROM "顧客"'))
        assert names == ["佐藤花子", "山田太郎"]
        assert '"顧客"' in run("db.inspect").stdout or "顧客" in run("db.inspect").stdout
        source = tmp_path / "旧データ.db"
        with sqlite3.connect(source) as lite:
            lite.execute('CREATE TABLE "商品" ("名前" TEXT, "価格" INTEGER)')
            lite.execute("INSERT INTO \"商品\" VALUES ('お茶', 150)")
        lite.close()
        assert (
            "imported 1 tables, 1 rows into 移行"
            in run("db.import-sqlite", str(source), "--schema", "移行").stdout
        )
        with psycopg.connect(url) as conn:
            assert conn.execute('SELECT "名前", "価格" FROM "移行"."商品"').fetchone() == (
                "お茶",
                150,
            )
    finally:
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
            for row in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{DATABASE}%",)
            ).fetchall():
                admin.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(row[0]))
                )
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(ROLE)))
