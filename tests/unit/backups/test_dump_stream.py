import gzip
import io

import pytest

from pgkura.backups.dump_stream import DumpStream, Transactions
from pgkura.compression.gzip_blocks import CorruptArchive, ParallelGzipWriter, gunzip

DUMP = (
    b"SET client_encoding = 'UTF8';\n"
    b"COPY public.t (id, body) FROM stdin;\n"
    b"1\tBEGIN;\n"
    b"2\tCOMMIT;\n"
    b"3\t\\\\.\n"
    b"\\.\n"
    b"COPY public.empty (id) FROM stdin;\n"
    b"\\.\n"
    b"BEGIN;\n"
    b"SELECT pg_catalog.lo_open('16389', 131072);\n"
    b"COMMIT;\n"
    b"--\n-- PostgreSQL database dump complete\n--\n"
)


def run(
    chunks: list[bytes], transactions: Transactions = Transactions.CALLER
) -> tuple[bytes, bool]:
    stream = DumpStream(transactions)
    out = b"".join(stream.feed(c) for c in chunks) + stream.finish()
    return out, stream.trailer_seen


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(DUMP)])
def test_begin_commit_outside_copy_are_neutralised_whatever_the_chunking(size):
    out, trailer = run([DUMP[i : i + size] for i in range(0, len(DUMP), size)])
    lines = out.split(b"\n")
    assert b"1\tBEGIN;" in lines  # data rows are untouched
    assert b"2\tCOMMIT;" in lines
    assert b"BEGIN;" not in lines
    assert b"COMMIT;" not in lines
    assert out.count(b"-- pgkura:") == 2
    assert trailer
    kept = [x for x in lines if not x.startswith(b"-- pgkura:")]
    assert kept == [x for x in DUMP.split(b"\n") if x not in (b"BEGIN;", b"COMMIT;")]


@pytest.mark.parametrize("size", [1, 5, len(DUMP)])
def test_a_load_without_a_transaction_of_its_own_keeps_pg_dumps(size):
    """db.upgrade's load: lo_open and lowrite must share pg_dump's BEGIN ... COMMIT."""
    out, trailer = run([DUMP[i : i + size] for i in range(0, len(DUMP), size)], Transactions.DUMP)
    assert out == DUMP
    assert trailer


def test_a_dump_cut_before_its_trailer_is_noticed():
    cut = DUMP[: DUMP.index(b"--\n-- PostgreSQL")]
    assert run([cut])[1] is False


def test_parallel_gzip_round_trip_is_one_valid_gz_file():
    data = b"".join(b"row %d \xe6\x97\xa5\xe6\x9c\xac\n" % i for i in range(400_000))  # > 1 MiB
    out = io.BytesIO()
    writer = ParallelGzipWriter(out, level=6, threads=2)
    for i in range(0, len(data), 100_000):
        writer.write(data[i : i + 100_000])
    writer.close()
    compressed = out.getvalue()
    assert gzip.decompress(compressed) == data  # what gunzip and Python's gzip read
    pieces = [compressed[i : i + 4096] for i in range(0, len(compressed), 4096)]
    assert b"".join(gunzip(iter(pieces))) == data
    assert writer.size == len(compressed)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b[:100] + bytes([b[100] ^ 0xFF]) + b[101:], "damaged"),
        (lambda b: b"", "empty"),
        (lambda b: b"not gzip at all", "damaged"),
    ],
)
def test_damaged_archives_are_refused(damage, message):
    good = gzip.compress(b"x" * 100_000 + bytes(range(256)) * 1000)
    with pytest.raises(CorruptArchive, match=message):
        b"".join(gunzip(iter([damage(good)])))


def _restored(text: str) -> bytes:
    stream = DumpStream(Transactions.CALLER)
    return stream.feed(text.encode()) + stream.finish()


def test_over_an_existing_database_installed_extensions_are_kept():
    out = _restored("DROP EXTENSION IF EXISTS vector;\nCREATE EXTENSION IF NOT EXISTS vector;\n")
    assert out == (b"-- pgkura: kept installed: DROP EXTENSION IF EXISTS vector;\n"
                   b"CREATE EXTENSION IF NOT EXISTS vector;\n")  # fmt: skip


@pytest.mark.parametrize(
    ("table", "name"),
    [
        ("public.events_2025", "events_2025_pkey"),
        ('"営業"."受注 2025"', '"受注 2025_pkey"'),
        ('public."its"', '"a ""quoted"" one"'),
    ],
)
def test_an_inherited_constraint_is_left_to_its_parents_drop(table, name):
    line = f"ALTER TABLE IF EXISTS ONLY {table} DROP CONSTRAINT IF EXISTS {name};"
    out = _restored(line + "\n").decode()
    assert out.startswith("DO $pgkura$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint")
    assert f"to_regclass('{table.replace(chr(39), chr(39) * 2)}')" in out
    assert f"quote_ident(conname) = '{name.replace(chr(39), chr(39) * 2)}'" in out
    assert f"THEN {line} END IF; END $pgkura$;\n" in out


def test_a_load_without_a_transaction_of_its_own_changes_no_drop():
    text = b"DROP EXTENSION IF EXISTS vector;\nALTER TABLE IF EXISTS ONLY a.b DROP CONSTRAINT IF EXISTS c;\n"
    stream = DumpStream(Transactions.DUMP)
    assert stream.feed(text) + stream.finish() == text
