"""pgkura tasks: `invoke --list` shows them. This file only composes; the tasks live in
src/pgkura/cli, one module per concern, and import the library inside their bodies, so
`invoke --list` stays fast."""

from __future__ import annotations

from pathlib import Path

from invoke.collection import Collection

from pgkura.cli import (
    backups,
    images,
    inspection,
    migrations,
    pitr,
    replication,
    schedule,
    server,
    sqlite,
)
from pgkura.cli import upgrade as major

db = Collection(
    "db", server.up, server.down, server.restart, server.logs, server.ps, server.psql,
    server.reset, server.tls_cert, inspection.extensions, inspection.doctor,
    migrations.migrate, migrations.status, migrations.new, migrations.example,
    migrations.rollback,
    migrations.baseline, migrations.adopt, migrations.repair, server.wait,
    migrations.check_migrations, migrations.dump_schema, migrations.drift,
    backups.backup, backups.restore, backups.list_backups, backups.prune, backups.verify,
    schedule.schedule, major.upgrade, sqlite.import_sqlite, inspection.inspect,
    pitr.basebackup, pitr.restore_to, pitr.pitr_drill, inspection.metrics,
    replication.standby, replication.promote,
)  # fmt: skip
ns = Collection(db, Collection("docker", images.docker_build, images.docker_push))
# the tasks find the project (its .env, db/, backups/) beside this file
ns.configure({"pgkura": {"root": str(Path(__file__).resolve().parent)}})
