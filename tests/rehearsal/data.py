"""An application-shaped database generated server-side (psql inside the container), and the
fingerprint that proves two copies hold the same data.

The shapes: Japanese text with a pg_bigm index, jsonb, a vector column with HNSW, bytea, large
objects, a partitioned table, a materialized view and 60 sequences. Most bytes are random (bytea,
large objects), as an application's images and files are, so the backups are not just
compressible text. `activity` and `app_sessions` are the load's own tables (tests/rehearsal/
load.py writes them); the fingerprint covers everything else."""

# ruff: noqa: S608 (SQL built from this module's constants, never from input)
from __future__ import annotations

import subprocess

# Real Japanese sentences (news, notices, support mail, product pages)
SENTENCES = (
    "東京都の明日の天気は晴れのち曇りです。",
    "京都から東京へ新幹線で移動しました。",
    "大阪府の名物はたこ焼きです。",
    "ご注文の商品は三営業日以内に発送いたします。",
    "パスワードを再設定するには、以下のリンクを開いてください。",
    "会議の議事録を共有フォルダに保存しました。",
    "来週の月曜日は祝日のため、窓口はお休みです。",
    "新しい機能の説明書を添付いたします。",
    "北海道では今朝、初雪が観測されました。",
    "請求書の金額に誤りがありましたので、訂正版をお送りします。",
    "社員食堂の今日の定食は鯖の味噌煮です。",
    "システムの定期メンテナンスは午前二時から四時までです。",
    "お問い合わせいただいた件について、担当者から折り返しご連絡します。",
    "桜の開花予想が発表されました。",
    "この商品は期間限定で二割引きになります。",
    "駅前の図書館が改装のため一か月閉館します。",
    "検索結果が正しく表示されない不具合を修正しました。",
    "埋め込みベクトルによる類似文書の検索を試しています。",
    "全文検索の索引を作り直す必要があります。",
    "福岡市の人口は百六十万人を超えました。",
)
WORDS = ("東京都", "新幹線", "請求書", "議事録", "不具合", "図書館", "天気", "検索", "商品", "桜")
LOAD_TABLES = ("activity", "app_sessions")
SEQUENCES = 60


def _array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ",".join("'" + v + "'" for v in values) + "]"


def _sentence() -> str:
    return f"({_array(SENTENCES)})[1 + floor(random() * {len(SENTENCES)})::int]"


def generate_sql(size_mb: int, *, bigm: bool) -> str:
    """SQL that builds about `size_mb` MB (tables and indexes, as measured): a third partitioned
    events, a quarter bytea attachments, an eighth large objects, a sixth audit jsonb, and
    articles (Japanese text, jsonb, vector(16) with HNSW, pg_bigm GIN when `bigm`), kept to 20
    rows a MB: every restore rebuilds their indexes, which costs more CPU than anything else."""
    events = size_mb * 1200
    attachments = size_mb * 32  # 8 KiB each
    large_objects = max(4, size_mb // 20)  # 1 MiB each
    articles = size_mb * 20
    audit = size_mb * 400
    sentence = _sentence()
    body = f"{sentence} || {sentence} || {sentence} || {sentence}"
    random_bytes = "decode(string_agg(md5(random()::text || i), ''), 'hex')"
    bigm_index = (
        "CREATE INDEX articles_body_bigm ON articles USING gin (body gin_bigm_ops);" if bigm else ""
    )
    sequences = "\n".join(
        f"CREATE SEQUENCE counter_{n:02d} START {n * 100};"
        f" SELECT setval('counter_{n:02d}', {n * 100 + n * 7});"
        for n in range(1, SEQUENCES + 1)
    )
    partitions = "\n".join(
        f"CREATE TABLE events_2025_{m:02d} PARTITION OF events FOR VALUES FROM "
        f"('2025-{m:02d}-01') TO ('{2025 + m // 12}-{m % 12 + 1:02d}-01');"
        for m in range(1, 13)
    )
    return f"""
\\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vector;
{"CREATE EXTENSION IF NOT EXISTS pg_bigm;" if bigm else ""}
SET maintenance_work_mem = '256MB';

CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    account_id int NOT NULL,
    kind text NOT NULL,
    payload jsonb NOT NULL,
    note text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
{partitions}
INSERT INTO events (account_id, kind, payload, note, created_at)
SELECT g % 5000, (ARRAY['login','view','purchase','search'])[1 + g % 4],
       jsonb_build_object('ip', '192.0.2.' || g % 250, 'agent', 'Mozilla/5.0 rehearsal',
                          'items', jsonb_build_array(g % 97, g % 89, g % 83), 'ok', g % 3 > 0),
       {sentence},
       timestamptz '2025-01-01' + (g::bigint * 31535999 / {events}) * interval '1 second'
FROM generate_series(1, {events}) g;
CREATE INDEX events_account ON events (account_id, created_at);

CREATE TABLE attachments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    mime text NOT NULL,
    content bytea NOT NULL
);
INSERT INTO attachments (name, mime, content)
SELECT '添付ファイル_' || g || '.png', 'image/png',
       (SELECT {random_bytes} FROM generate_series(1, 512) i WHERE g > 0)
FROM generate_series(1, {attachments}) g;

CREATE TABLE documents_files (id int PRIMARY KEY, title text NOT NULL, file oid NOT NULL);
INSERT INTO documents_files
SELECT g, '資料 ' || g,
       lo_from_bytea(0, (SELECT {random_bytes} FROM generate_series(1, 65536) i WHERE g > 0))
FROM generate_series(1, {large_objects}) g;

CREATE TABLE articles (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL,
    body text NOT NULL,
    tags jsonb NOT NULL,
    embedding vector(16) NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO articles (title, body, tags, embedding, created_at)
SELECT '記事 ' || g, {body},
       jsonb_build_object('tags', jsonb_build_array('お知らせ', 'ニュース', g % 10), 'rank', g % 100),
       (SELECT array_agg(random())::real[] FROM generate_series(1, 16) i WHERE g > 0)::vector,
       timestamptz '2025-01-01' + g * interval '1 minute'
FROM generate_series(1, {articles}) g;
CREATE INDEX articles_embedding ON articles USING hnsw (embedding vector_l2_ops);
{bigm_index}

CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor text NOT NULL,
    change jsonb NOT NULL
);
INSERT INTO audit_log (actor, change)
SELECT 'user' || g % 300,
       jsonb_build_object('table', 'articles', 'id', g, 'before', jsonb_build_object('title',
       '記事 ' || g), 'after', jsonb_build_object('title', '記事 ' || g || ' 改訂版'),
       'reason', {sentence})
FROM generate_series(1, {audit}) g;

CREATE MATERIALIZED VIEW article_monthly AS
SELECT date_trunc('month', created_at) AS month, count(*) AS articles,
       sum((tags->>'rank')::int) AS rank_total
FROM articles GROUP BY 1;
CREATE UNIQUE INDEX article_monthly_month ON article_monthly (month);

{sequences}

CREATE TABLE app_sessions (id int PRIMARY KEY, user_name text NOT NULL, hits bigint NOT NULL,
                           last_seen timestamptz NOT NULL);
INSERT INTO app_sessions SELECT g, 'ユーザー' || g, 0, now() FROM generate_series(1, 200) g;
CREATE TABLE activity (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id int NOT NULL,
    detail jsonb NOT NULL,
    note text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
VACUUM ANALYZE;
"""


FINGERPRINT_TABLES = ("events", "attachments", "documents_files", "articles", "audit_log",
                      "article_monthly")  # fmt: skip


def _rows_hash(table: str) -> str:
    """Row count and an order-independent hash of every row's text."""
    return (
        f"SELECT '{table}', count(*)::text || ':' || "
        f"coalesce(bit_xor(hashtextextended(t::text, 0)), 0) FROM {table} t"
    )


FINGERPRINT_SQL = (
    " UNION ALL ".join(_rows_hash(t) for t in FINGERPRINT_TABLES)
    + " UNION ALL SELECT 'large objects', count(*)::text || ':' ||"
    " coalesce(bit_xor(hashtextextended(md5(lo_get(oid)), 0)), 0) FROM pg_largeobject_metadata"
    " UNION ALL SELECT 'sequences', string_agg(sequencename || '=' || last_value, ','"
    " ORDER BY sequencename) FROM pg_sequences WHERE sequencename LIKE 'counter%'"
)
LOAD_FINGERPRINT_SQL = " UNION ALL ".join(_rows_hash(t) for t in LOAD_TABLES)


def psql(container: str, sql: str, database: str = "app") -> str:
    """SQL through the container's own psql (fast: no network, no client-side rows)."""
    done = subprocess.run(
        ["docker", "exec", "-i", container, "psql", "-U", "app", "-d", database, "-XAt", "-q",
         "-v", "ON_ERROR_STOP=1"],
        input=sql, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def fingerprint(container: str, sql: str = FINGERPRINT_SQL) -> dict[str, str]:
    """Per table: row count and an order-independent hash of every row; the same for the large
    objects' contents; the sequences' values."""
    rows = psql(container, sql + ";").splitlines()
    return dict(row.split("|", 1) for row in rows if row)
