"""What the quick container paths read from client programs: pg_dump's header, and whether a
client never connected (so the careful path may run instead, nothing having happened)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pgkura.backups.take import header_versions
from pgkura.engines.pg_tools import could_not_connect

HEADER = b"""--
-- PostgreSQL database dump
--

\\restrict m0Ynqo9fOX0CF1zoBObFOkJ1bOl9NqNOg1Ci5ACzlKOzoRbJttLgbDU2ycDEcfa

-- Dumped from database version 18.6 (Debian 18.6-3)
-- Dumped by pg_dump version 18.6 (Debian 18.6-3)

SET statement_timeout = 0;
"""


def test_versions_come_from_the_header():
    assert header_versions(HEADER) == ("18.6", "18.6")
    development = HEADER.replace(b"18.6 (Debian 18.6-3)", b"19devel")
    assert header_versions(development) == ("19.0", "19")


def test_a_header_without_versions_says_unknown_rather_than_guessing():
    assert header_versions(b"--\n-- PostgreSQL database cluster dump\n--\n") == (
        "unknown",
        "unknown",
    )
    # only at the start of a line: a table's data that mentions the words is not the header
    quoted = b"COPY t (v) FROM stdin;\nsee -- Dumped from database version 9.6\n\\.\n"
    assert header_versions(quoted) == ("unknown", "unknown")


# PostgreSQL 18's own words, as pg_dump and psql print them in the container
NEVER_CONNECTED = [
    'pg_dump: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" '
    'failed: FATAL:  database "nope" does not exist',
    'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
    "FATAL:  the database system is starting up",
    'pg_dump: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?",
]
LOST_HALF_WAY = [
    "psql:<stdin>:1204: error: connection to server was lost",
    'pg_dump: error: Dumping the contents of table "notes" failed: PQgetResult() failed.\n'
    "pg_dump: detail: Error message from server: server closed the connection unexpectedly",
    'psql:<stdin>:12: ERROR:  relation "t" does not exist',
]


def test_never_connected_is_told_apart_from_a_failure_after_connecting():
    assert all(could_not_connect(text) for text in NEVER_CONNECTED)
    assert not any(could_not_connect(text) for text in LOST_HALF_WAY)


@given(st.text())
def test_arbitrary_server_messages_after_connecting_are_not_taken_for_a_connect_failure(text):
    """Whatever a failing statement's message says, psql prefixes it with its input line, and
    only the program's own first words at the start of a line count."""
    assert not could_not_connect(f"psql:<stdin>:7: ERROR:  {text}".replace("\n", " "))
