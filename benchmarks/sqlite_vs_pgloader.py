"""db.import-sqlite against pgloader (Debian's package), side by side in one run, on SQLite
files given on the command line, into a throwaway PostgreSQL 18: time, and correctness (of the
last run of each) as row counts per table and a checksum of every value read back, both
against the SQLite file.

    python -m benchmarks.sqlite_vs_pgloader [FILE.sqlite ...] [--generated ROWS] [--repeat 3]

`--generated ROWS` adds a file made here, the same every time: an `orders` table of ROWS rows
(integers, prices, amounts, timestamps, flags, Japanese and escaped text, NULLs, small blobs)
referencing 100,000 `customers`, built by SQLite itself in seconds.

Values are compared after a neutral normalisation (numbers as decimals, timestamps in UTC, text
as text), since the two tools choose different column types (pgloader's numeric where pgkura
keeps double precision, for example); column names case-insensitively, as pgloader folds them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgkura.clusters.throwaway import ThrowawayServer
from pgkura.sqlite.schema import read_source

ROOT = Path(__file__).resolve().parent.parent
INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def neutral(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float | Decimal):
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value)).normalize()
        except InvalidOperation:
            return str(value)
        return format(number, "f")
    if isinstance(value, str) and _ISO.match(value):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).replace(tzinfo=None).isoformat()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).isoformat()
    if isinstance(value, bytes | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def digest(rows: Any) -> tuple[int, str]:
    hashes = sorted(hashlib.sha256("\t".join(map(neutral, r)).encode()).digest() for r in rows)
    return len(hashes), hashlib.sha256(b"".join(hashes)).hexdigest()


def expected(path: Path) -> dict[str, tuple[list[str], tuple[int, str]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    out = {}
    # what pgkura carries as tables (never full-text indexes' shadow tables)
    names = [t.name for t in read_source(conn).tables]
    for name in names:
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
        out[name] = (cols, digest(conn.execute(f'SELECT * FROM "{name}"')))  # noqa: S608
    conn.close()
    return out


def found(url: str, schema: str, want: dict[str, tuple[list[str], tuple[int, str]]]) -> list[str]:
    """The tables whose count or values differ from SQLite's (empty: all equal)."""
    wrong = []
    with psycopg.connect(url) as conn:
        tables = {r[0].lower(): r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,))}  # fmt: skip
        for name, (cols, truth) in want.items():
            real = tables.get(name.lower())
            if real is None:
                wrong.append(f"{name}: missing")
                continue
            columns = {r[0].lower(): r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s", (schema, real))}  # fmt: skip
            picked = sql.SQL(", ").join(sql.Identifier(columns[c.lower()]) for c in cols)
            rows = conn.execute(sql.SQL("SELECT {} FROM {}").format(
                picked, sql.Identifier(schema, real))).fetchall()  # fmt: skip
            got = digest(rows)
            if got != truth:
                what = "rows" if got[0] != truth[0] else "values"
                wrong.append(f"{name}: {what} differ ({got[0]} vs {truth[0]} rows)")
    return wrong


def reset(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        if schema == "public":
            conn.execute("CREATE SCHEMA public")


GENERATED = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, since DATE);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id),
  ordered_at DATETIME NOT NULL, price NUMERIC, amount REAL, paid BOOLEAN, note TEXT, tag BLOB
);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO customers SELECT i, CASE i % 3 WHEN 0 THEN '顧客 ' || i ELSE 'customer ' || i END,
  date(1500000000 + i * 613, 'unixepoch') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
INSERT INTO orders SELECT i, (i * 7919) % 100000 + 1, datetime(1600000000 + i * 37, 'unixepoch'),
  ((i * 104729) % 100000) / 100.0, (i % 977) * 1.25e-3, i % 2,
  CASE WHEN i % 7 = 0 THEN NULL WHEN i % 5 = 0 THEN '配送: 午前' ELSE 'note	' || i END,
  CASE WHEN i % 11 = 0 THEN x'' ELSE x'00ff10' END FROM n;
"""


def generated(directory: Path, rows: int) -> Path:
    """The generated benchmark file (made once per size in `directory`)."""
    path = directory / f"generated-{rows}.sqlite"
    if not path.exists():
        with sqlite3.connect(path) as conn:
            for statement in GENERATED.split(";")[:-1]:
                conn.execute(statement, {"rows": rows} if ":rows" in statement else {})
        conn.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--generated", type=int, metavar="ROWS", help="add a generated file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.generated:
        args.files.append(generated(Path(tempfile.gettempdir()), args.generated))
    pgloader = shutil.which("pgloader")
    if pgloader is None:
        sys.exit("pgloader is not installed (Debian: apt-get install pgloader)")
    with ThrowawayServer() as server:
        url = server.url("postgres")
        env = {**os.environ, "DATABASE_URL": url, "PGKURA_ENV_FILE": os.devnull}
        for path in args.files:
            want = expected(path)
            rows = sum(t[1][0] for t in want.values())
            ours: list[float] = []
            theirs: list[float] = []
            ours_wrong: list[str] = []
            theirs_wrong: list[str] = []
            for i in range(args.repeat):
                for who in ("pgkura", "pgloader") if i % 2 == 0 else ("pgloader", "pgkura"):
                    reset(url, "public")
                    started = time.perf_counter()
                    if who == "pgkura":
                        subprocess.run([*INVOKE, "db.import-sqlite", str(path)], env=env,
                                       check=True, capture_output=True)  # fmt: skip
                        ours.append(time.perf_counter() - started)
                        if i == args.repeat - 1:  # each comparison takes a minute a million rows
                            ours_wrong = found(url, "public", want)
                    else:
                        # pgloader takes the password in its URL: a throwaway server's
                        subprocess.run([pgloader, "--quiet", f"sqlite://{path.resolve()}", url],
                                       check=True, capture_output=True)  # fmt: skip
                        theirs.append(time.perf_counter() - started)
                        if i == args.repeat - 1:
                            theirs_wrong = found(url, "public", want)
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"{path.name}: {len(want)} tables, {rows} rows")
            for who, secs, wrong in (("pgkura  ", a, ours_wrong), ("pgloader", b, theirs_wrong)):
                print(f"  {who} {secs:.2f} s, equal to SQLite: {'; '.join(wrong) or 'all tables'}")
            print(f"  ratio pgkura/pgloader = {a / b:.2f}")


if __name__ == "__main__":
    main()
