"""Japanese search through pg_bigm, checked the same way on the throwaway server (integration
tier) and on the full image (e2e tier), in a database with the example schema (examples/documents:
the `documents` table and its GIN `gin_bigm_ops` index).

The data is chosen so that the scans give different answers: 旅行's body holds both bigrams of
東京都 (東京, 京都) but not the word. A sequential scan (or an index scan with its recheck)
never returns it; the bigram index without recheck does. So a result proves which path ran.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

INDEX = "documents_body_bigm"
WORD = "東京都"
DOCUMENTS = (
    ("天気", "東京都の明日の天気は晴れのち曇りです。"),
    ("旅行", "京都から東京へ新幹線で移動しました。"),  # 東京 and 京都, but not 東京都
    ("大阪", "大阪府の名物はたこ焼きです。"),
    ("果汁", "果汁100%のジュースを飲みました。"),
)
LIKE = "SELECT title FROM documents WHERE body LIKE likequery(%s)"
SIMILAR = "SELECT title FROM documents WHERE body =%% %s"


def load(conn: psycopg.Connection) -> None:
    """The documents, and statistics for the planner."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO documents (title, body) VALUES (%s, %s)", DOCUMENTS)
    conn.execute("ANALYZE documents")


def _settings(conn: psycopg.Connection, settings: dict[str, str]) -> None:
    """For the current transaction; `pg_bigm__x` stands for `pg_bigm.x`."""
    for name, value in settings.items():
        conn.execute("SELECT set_config(%s, %s, true)", (name.replace("__", "."), value))


def titles(conn: psycopg.Connection, query: str, word: str, **settings: str) -> set[str]:
    """The titles `query` finds for `word`, with `settings` (pg_bigm.* or enable_*) for this
    query only."""
    with conn.transaction():
        _settings(conn, settings)
        return {row[0] for row in conn.execute(query, (word,))}


def plan(conn: psycopg.Connection, query: str, word: str, **settings: str) -> str:
    with conn.transaction():
        _settings(conn, settings)
        rows = conn.execute(f"EXPLAIN (COSTS OFF) {query}", (word,)).fetchall()
        return "\n".join(row[0] for row in rows)


INDEX_ONLY = {"enable_seqscan": "off"}
NO_INDEX = {"enable_bitmapscan": "off", "enable_indexscan": "off"}
NO_RECHECK = {"pg_bigm__enable_recheck": "off"}


def check_like_uses_the_bigram_index(conn: psycopg.Connection) -> None:
    assert f"Bitmap Index Scan on {INDEX}" in plan(conn, LIKE, WORD, **INDEX_ONLY)
    assert titles(conn, LIKE, WORD, **INDEX_ONLY) == {"天気"}
    assert "Seq Scan on documents" in plan(conn, LIKE, WORD, **NO_INDEX)
    assert titles(conn, LIKE, WORD, **NO_INDEX) == {"天気"}


def check_the_index_answers_without_recheck(conn: psycopg.Connection) -> None:
    """Only the bigram index returns 旅行 (both bigrams, not the word): it really ran."""
    assert titles(conn, LIKE, WORD, **INDEX_ONLY, **NO_RECHECK) == {"天気", "旅行"}
    assert titles(conn, LIKE, WORD, **NO_INDEX, **NO_RECHECK) == {"天気"}


def check_likequery_escapes_wildcards(conn: psycopg.Connection) -> None:
    assert conn.execute("SELECT likequery('100%')").fetchone() == ("%100\\%%",)
    assert titles(conn, LIKE, "100%", **INDEX_ONLY) == {"果汁"}


def check_similarity_operator_follows_the_limit(conn: psycopg.Connection) -> None:
    """bigm_similarity of the query to 天気's body is 0.45, to 旅行's 0.105."""
    query = "東京都の明日の天気"
    assert "Bitmap Index Scan on " + INDEX in plan(conn, SIMILAR, query, **INDEX_ONLY)
    expected = {"0.5": set(), "0.3": {"天気"}, "0.1": {"天気", "旅行"}}
    for limit, found in expected.items():
        found_now = titles(conn, SIMILAR, query, **INDEX_ONLY, pg_bigm__similarity_limit=limit)
        assert found_now == found, limit


def check_bigm_similarity(conn: psycopg.Connection) -> None:
    pairs = [("東京都", "東京都", 1.0), ("東京都", "京都", 0.5), ("東京都", "大阪府", 0.0)]
    for a, b, expected in pairs:
        row = conn.execute("SELECT bigm_similarity(%s, %s)", (a, b)).fetchone()
        assert row is not None
        assert abs(row[0] - expected) < 1e-6, (a, b, row)


def check_settings_registered_by_the_preload(conn: psycopg.Connection) -> None:
    """Before any pg_bigm function runs in this session, its settings exist: preloaded."""
    fresh = psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True)
    with fresh:
        names = {
            r[0] for r in fresh.execute("SELECT name FROM pg_settings WHERE name ~ '^pg_bigm'")
        }
        assert {
            "pg_bigm.last_update",
            "pg_bigm.similarity_limit",
            "pg_bigm.enable_recheck",
        } <= names
        row = fresh.execute("SELECT current_setting('pg_bigm.last_update')").fetchone()
        assert row is not None
        assert row[0] == "2025.09.03"
        libraries = fresh.execute("SHOW shared_preload_libraries").fetchone()
        assert libraries is not None
        assert "pg_bigm" in libraries[0]


CHECKS: tuple[Callable[[psycopg.Connection], None], ...] = (
    check_like_uses_the_bigram_index,
    check_the_index_answers_without_recheck,
    check_likequery_escapes_wildcards,
    check_similarity_operator_follows_the_limit,
    check_bigm_similarity,
    check_settings_registered_by_the_preload,
)
