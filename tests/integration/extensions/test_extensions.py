"""db.extensions on a server reached by DATABASE_URL (as a managed server would be)."""

from __future__ import annotations

import pytest

from pgkura.errors import PgkuraError
from pgkura.extensions import check as extensions


def test_check_then_ensure_installs_and_verifies(pg_server, database):
    target = pg_server.target(database)
    before = {s.name: s for s in extensions.check(target, ("vector",))}
    assert before["vector"].state == "available"
    after = {s.name: s for s in extensions.ensure(target, ("vector",))}
    assert after["vector"].installed == after["vector"].available


def test_an_extension_the_server_lacks_is_named_with_a_managed_server_remedy(pg_server, database):
    target = pg_server.target(database)
    with pytest.raises(PgkuraError) as err:
        extensions.ensure(target, ("vector", "postgis"))
    assert "not available on the server: postgis" in str(err.value)
    assert "provider's settings" in str(err.value)
    assert {s.name: s.installed for s in extensions.check(target, ("vector",))} == {"vector": None}


def test_old_pgvector_is_warned_about():
    for version in ("0.8.1", "0.8.3"):
        old = extensions.ExtensionStatus("vector", version, version)
        assert "older than 0.8.4" in (extensions.pgvector_warning([old]) or "")
    for version in ("0.8.4", "0.8.6", "0.10.0"):
        new = extensions.ExtensionStatus("vector", version, version)
        assert extensions.pgvector_warning([new]) is None
