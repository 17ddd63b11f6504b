"""The one judge of a backup: the writer's trailer check and the reader's agree on every dump
ending, and the manifest's hash decides trust the same way for verify, restore and offsite."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.backups import integrity
from pgkura.backups.dump_stream import DumpStream, Transactions

BODY = b"-- PostgreSQL database dump\n\nCREATE TABLE t (a int);\n"
ENDINGS = [
    (b"-- PostgreSQL database dump complete\n\n", True),
    (b"-- PostgreSQL database dump complete\n\n\\unrestrict abc\n\n", True),  # PostgreSQL 18
    (b"-- PostgreSQL database cluster dump complete\n\n", True),
    (b"-- PostgreSQL database dump complete", True),  # no newline at the very end
    (b"", False),  # cut off between statements
    (b"SELECT '-- PostgreSQL database dump complete';\n", False),  # not a line of its own
]


def _read_to_end(text: bytes, pieces: int) -> bool:
    stream = DumpStream(Transactions.DUMP)
    size = max(1, len(text) // pieces)
    for at in range(0, len(text), size):
        stream.feed(text[at : at + size])
    stream.finish()
    return stream.trailer_seen


@pytest.mark.parametrize(("ending", "complete"), ENDINGS)
@given(pieces=st.integers(min_value=1, max_value=40))
def test_writing_and_reading_judge_a_dump_s_end_alike(ending, complete, pieces):
    text = BODY + ending
    assert integrity.ends_complete(text[-4096:]) is complete
    assert _read_to_end(text, pieces) is complete


def test_trust_is_the_manifest_s_hash():
    manifest = {"sha256": "ab" * 32}
    assert integrity.matches(manifest, "ab" * 32)
    assert not integrity.matches(manifest, "cd" * 32)
    assert not integrity.matches({}, "")  # nothing recorded: nothing to trust it by
    assert integrity.problems(manifest, "ab" * 32, trailer_seen=True) == []
    assert integrity.problems({}, "cd" * 32, trailer_seen=True) == []  # pg_dump's own file
    cut, changed = integrity.problems(manifest, "cd" * 32, trailer_seen=False)
    assert cut == integrity.MISSING_TRAILER
    assert "does not match the manifest" in changed


def test_a_file_changed_after_it_was_written_is_not_unchanged(tmp_path):
    from pgkura.checksums import sha256_of

    path = tmp_path / "app_20250101_000000.sql.gz"
    path.write_bytes(b"backup")
    manifest = {"sha256": sha256_of(path)}
    assert integrity.unchanged(path, manifest)
    path.write_bytes(b"backuq")
    assert not integrity.unchanged(path, manifest)
