"""Passwords never leave: not in rendered targets, not in errors for valid or invalid URLs."""

from __future__ import annotations

import socket
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from psycopg import pq

from pgkura.config.settings import load_settings
from pgkura.connect.connection import ConnectionRefused, Refusal, connect
from pgkura.dsn import Target, TargetKind, parse_database_url
from pgkura.errors import ConfigError
from pgkura.schedule.alerts import alerting
from pgkura.validation import redact_url

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


# Every setting that holds a URL, with a secret where people put one by mistake or by design
URL_SETTINGS = [
    ("PGKURA_OFFSITE_URL", "s3://AKIAEXAMPLE:{raw}@bucket/prod"),
    ("PGKURA_OFFSITE_URL", "s3://{raw}@bucket"),
    ("PGKURA_S3_ENDPOINT", "https://key:{raw}@s3.example.com"),
    ("PGKURA_S3_ENDPOINT", "https://s3.example.com/?X-Amz-Security-Token={q}"),
    ("PGKURA_ALERT_URL", "https://hc-ping.com/{q}"),
    ("PGKURA_ALERT_URL", "https://ping.example.com/check?token={q}"),
    ("PGKURA_ALERT_URL", "https://user:{raw}@ping.example.com/"),
    ("PG_BIGM_SOURCE", "https://mirror.example.com/pg_bigm.tar.gz?token={q}"),
    ("PG_BIGM_SOURCE", "https://user:{raw}@mirror.example.com/pg_bigm.tar.gz"),
    ("DATABASE_URL", "postgresql://app:{q}@db.example.com/app"),
]


def _all_said(name: str, value: str, tmp_path) -> str:
    """What pgkura would print for one setting: the error, or what the settings show."""
    env = {"PGKURA_OFFSITE_URL": "s3://bucket/p", name: value}
    try:
        settings = load_settings(tmp_path, env)
    except ConfigError as exc:
        return str(exc)
    shown = [repr(settings), settings.pg_bigm.describe(), settings.target.redacted()]
    if settings.offsite is not None:
        shown += [settings.offsite.url, repr(settings.offsite)]
    return "\n".join(shown)


@pytest.mark.parametrize(("name", "shape"), URL_SETTINGS)
@given(secret=passwords)
def test_no_url_setting_shows_its_secret(tmp_path_factory, name, shape, secret):
    tmp = tmp_path_factory.getbasetemp()
    reference = _all_said(name, shape.format(q=REFERENCE, raw=REFERENCE), tmp)
    assume(secret not in reference and quote(secret, safe="") not in reference)
    assume(secret not in LIBPQ_OPTIONS)
    said = _all_said(name, shape.format(q=quote(secret, safe=""), raw=secret), tmp)
    assert secret not in said
    assert quote(secret, safe="") not in said


def test_credentials_in_the_offsite_url_are_refused_and_the_url_shown_redacted(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, {"PGKURA_OFFSITE_URL": "s3://AKIAEX:wJalr/K7MDENG@bkt/prod"})
    message = str(err.value)
    assert "PGKURA_OFFSITE_URL='s3://***@bkt/prod' from the environment is invalid" in message
    assert "the keys go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in message
    assert "AKIAEX" not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://s3.example.com", "https://s3.example.com"),
        ("https://k:p@s3.example.com/x", "https://***@s3.example.com/x"),
        ("https://k:a/b?c#d@h:9000", "https://***@h:9000"),
        ("https://h/p?token=abc#frag", "https://h/p?***"),
        ("https://h/p#token", "https://h/p#***"),
        ("k:secret@bucket", "***@bucket"),
    ],
)
def test_urls_are_shown_without_their_secrets(url, shown):
    assert redact_url(url) == shown


def _failed_pings(token: str) -> list[str]:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/ping/{token}"
    said: list[str] = []
    with pytest.raises(RuntimeError), alerting(url, "db.backup", on_success=True, log=said.append):
        raise RuntimeError("the backup failed")
    return said


@given(token=passwords)
def test_a_failed_alert_ping_never_shows_the_url_s_token(token):
    """Whatever the token holds (controls, non-ASCII: refused by the setting, but the ping
    must not spill it either), the warning names the setting, not the URL, and its reason is
    the error's kind (a token like "/sta" is in the fixed words "/start": compared by part)."""
    said = _failed_pings(token)
    assert len(said) == 2
    fixed = {f"warning: the alert ping to PGKURA_ALERT_URL/{kind}" for kind in ("start", "fail")}
    known = {"InvalidURL)", *(r.partition(" failed (")[2] for r in _failed_pings("neutral"))}
    for line in said:
        head, _, reason = line.partition(" failed (")
        assert head in fixed
        assert token not in reason or reason in known
