"""Passwords never leave: not in rendered targets, not in errors for valid or invalid URLs."""

from __future__ import annotations

import socket
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from psycopg import pq

from pgkura.config import load_settings
from pgkura.connection import ConnectionRefused, Refusal, connect
from pgkura.dsn import Target, TargetKind, parse_database_url
from pgkura.errors import ConfigError

passwords = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=4, max_size=40
)
REFERENCE = "Qz9-reference-PW"
# a password that is also a libpq option's name (sslmode) is shown when that option is: rightly
LIBPQ_OPTIONS = {opt.keyword.decode() for opt in pq.Conninfo.get_defaults()}
SHAPES = [
    "postgresql://app:{q}@db.example.com:5432/app",  # valid
    "postgres+asyncpg://app:{q}@db.example.com/app?ssl=true",  # valid, driver form
    "mysql://app:{q}@db.example.com/app",  # wrong scheme
    "app:{raw}@db.example.com/app",  # no scheme at all
    "postgresql://app:{raw}%zz@db.example.com/app",  # broken percent-encoding
    "postgresql://app:{q}@[db.example.com/app",  # broken IPv6 bracket
    "postgresql://app:{q}@db.example.com:port/app",  # bad port
    "postgresql://app:{q}@db.example.com/app?{q}=1",  # unknown option named like the password
]


def _everything_said(url: str, tmp_path) -> str:
    """What pgkura would print for DATABASE_URL=url: the target, or the error."""
    try:
        settings = load_settings(tmp_path, {"DATABASE_URL": url})
    except ConfigError as exc:
        return str(exc)
    return settings.target.redacted() + repr(settings)


@pytest.mark.parametrize("shape", SHAPES)
@given(password=passwords)
def test_no_output_contains_the_password(tmp_path_factory, shape, password):
    tmp = tmp_path_factory.getbasetemp()
    reference = _everything_said(shape.format(q=quote(REFERENCE, safe=""), raw=REFERENCE), tmp)
    assume(password not in reference)  # words the message has anyway prove nothing
    assume(password not in LIBPQ_OPTIONS)
    assume(quote(password, safe="") not in reference)
    said = _everything_said(shape.format(q=quote(password, safe=""), raw=password), tmp)
    assert password not in said
    assert quote(password, safe="") not in said


@given(password=passwords)
def test_percent_encoded_passwords_are_decoded(password):
    url = f"postgresql://app:{quote(password, safe='')}@h/app"
    assert parse_database_url(url)["password"] == password


def test_the_broken_part_is_named():
    with pytest.raises(ValueError, match="in the password"):
        parse_database_url("postgresql://app:50%off@h/app")
    with pytest.raises(ValueError, match="got scheme 'mysql'"):
        parse_database_url("mysql://app:pw@h/app")


def test_a_refused_connection_reads_as_one_line_with_libpq_s_reason():
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = Target(
        {"host": "127.0.0.1", "port": str(port), "user": "u", "password": "a", "dbname": "d"},
        TargetKind.URL,
    )
    with pytest.raises(ConnectionRefused) as err:
        connect(target, connect_timeout=2)
    message = str(err.value)
    assert err.value.refusal is Refusal.UNREACHABLE
    assert "Connection refused" in message
    assert "\t" not in message
    # a one-letter password is not "redacted" out of other words
    assert "accepting TCP/IP connections" in message
    assert "postgresql://u:***@127.0.0.1" in message
