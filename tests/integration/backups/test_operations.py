"""The operations behind the tasks: policy (backup first, confirmations) on a real server."""

from __future__ import annotations

import dataclasses

import pytest

from pgkura.backups.consent import Consent
from pgkura.backups.safety_net import before_deleting_volume
from pgkura.backups.store import BackupStore
from pgkura.clusters.throwaway import bin_dir
from pgkura.errors import ConfirmationRequired, PendingMigrationsError, PgkuraError
from pgkura.migrations.operations import (
    MigrateOptions,
    RollbackOptions,
    migrate,
    require_in_sync,
    rollback,
    status,
)
from pgkura.migrations.runner import Migrator

QUIET = lambda _msg: None  # noqa: E731


@pytest.fixture
def with_tools(settings):
    return dataclasses.replace(settings, pg_bin=bin_dir())


def test_migrate_backs_up_first_only_when_something_is_pending(with_tools, write_migration):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    store = BackupStore(with_tools.backup_dir)
    with pytest.raises(PendingMigrationsError):
        require_in_sync(status(with_tools))
    done = migrate(with_tools, MigrateOptions(backup=True), QUIET)
    assert [s.migration.version for s in done.steps] == [1]
    assert done.backup is not None
    assert done.backup.manifest["reason"] == "before migrating"
    assert [e.path for e in store.own(with_tools.target.dbname)] == [done.backup.path]
    again = migrate(with_tools, MigrateOptions(backup=True), QUIET)
    assert again.steps == []
    assert again.backup is None  # nothing pending: no backup
    require_in_sync(status(with_tools))
    # not the local container: db/schema.sql is not refreshed
    assert done.schema_written is None
    assert not with_tools.schema_file.exists()


def test_migrate_reads_the_plan_once_when_a_backup_comes_first(
    with_tools, write_migration, monkeypatch
):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    reads, real = [], Migrator.plan
    monkeypatch.setattr(Migrator, "plan", lambda self: reads.append(self) or real(self))
    done = migrate(with_tools, MigrateOptions(backup=True), QUIET)
    assert done.backup is not None
    assert [s.migration.version for s in done.steps] == [1]
    assert len(reads) == 1


def test_rollback_asks_for_exactly_what_it_undoes(with_tools, write_migration):
    for n, name in ((1, "a"), (2, "b")):
        write_migration(f"00{n}_{name}.sql", f"CREATE TABLE {name} (id int);")
        write_migration(f"00{n}_{name}.down.sql", f"DROP TABLE {name};")
    Migrator(with_tools).migrate()
    asked: list[str] = []
    refused = Consent(interactive=True, ask=lambda q: asked.append(q) or "n")
    with pytest.raises(ConfirmationRequired, match="not confirmed"):
        rollback(with_tools, RollbackOptions(steps=2), refused, QUIET)
    assert "roll back 002_b, 001_a on " in asked[0]
    assert {e.state for e in status(with_tools)} == {"applied"}
    # a dry run asks nobody and changes nothing
    would = rollback(with_tools, RollbackOptions(steps=2, dry_run=True), Consent(), QUIET)
    assert [s.migration.version for s in would] == [2, 1]
    done = rollback(with_tools, RollbackOptions(steps=2), Consent(yes=True), QUIET)
    assert [s.migration.version for s in done] == [2, 1]
    assert rollback(with_tools, RollbackOptions(), Consent(yes=True), QUIET) == []
    with pytest.raises(PgkuraError, match="choose one of --steps and --to"):
        RollbackOptions.from_flags(steps="1", to="0")


def test_production_refuses_to_delete_a_volume_without_force(with_tools):
    prod = dataclasses.replace(with_tools, environment="production")
    with pytest.raises(ConfirmationRequired, match="without --force"):
        before_deleting_volume(prod, "delete the data volume", Consent(yes=True),
                               backup=True, log=QUIET)  # fmt: skip
    with pytest.raises(ConfirmationRequired, match="non-interactive run; pass --yes"):
        before_deleting_volume(with_tools, "delete the data volume", Consent(),
                               backup=True, log=QUIET)  # fmt: skip
    answered = Consent(interactive=True, ask=lambda _q: "n")
    with pytest.raises(ConfirmationRequired, match="not confirmed; nothing was changed"):
        before_deleting_volume(with_tools, "delete the data volume", answered,
                               backup=True, log=QUIET)  # fmt: skip
