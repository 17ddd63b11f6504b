"""Which database errors mean the server ended the session, decided by SQLSTATE alone."""

import psycopg
import pytest
from psycopg import errors

from pgkura.connect.connection import session_lost
from pgkura.engines.server_lost import lost_server


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (errors.AdminShutdown, "57P01"),
        (errors.CrashShutdown, "57P02"),
        (errors.CannotConnectNow, "57P03"),
    ],
)
def test_the_server_ending_sessions_is_a_lost_server(error, said):
    # the message is user data (a database name could be anything): it decides nothing
    exc = error("terminating connection because of crash of another server process")
    assert said in (session_lost(exc) or "")
    assert "mid-way" in (lost_server(None, exc) or "")


def test_a_broken_connection_without_a_sqlstate_is_a_lost_server():
    assert session_lost(psycopg.OperationalError("server closed the connection")) is not None


@pytest.mark.parametrize(
    "error", [errors.DivisionByZero, errors.InsufficientPrivilege, errors.QueryCanceled]
)
def test_ordinary_errors_are_not(error):
    exc = error("terminating connection because of crash of another server process")
    assert session_lost(exc) is None
    assert lost_server(None, exc) is None
