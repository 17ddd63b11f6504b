"""Tasks that judge the database: extensions, doctor, inspect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.wiring import say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings


@task(help={"ensure": "CREATE EXTENSION IF NOT EXISTS each required extension, then verify"})
def extensions(c: Context, settings: Settings, ensure: bool = False) -> None:
    """Show the required extensions (PGKURA_EXTENSIONS), available and installed versions."""
    from pgkura.cli.report import table
    from pgkura.engines.readiness import ready
    from pgkura.extensions import check as ext

    target, names = settings.target, settings.required_extensions
    ready(settings)
    items = ext.ensure(target, names) if ensure else ext.check(target, names)
    print(f"target: {target.redacted()}")
    rows = [[s.name, s.available or "-", s.installed or "-", s.state] for s in items]
    print(table(["extension", "available", "installed", "state"], rows))
    warning = ext.pgvector_warning(items)
    if warning:
        say(f"warning: {warning}")
    if any(not s.installed for s in items):
        raise Exit("error: not every required extension is installed; "
                   "run `invoke db.extensions --ensure`")  # fmt: skip


@task
def doctor(c: Context, settings: Settings) -> None:
    """Check Docker, .env, port, container, server, extensions, migrations and backups."""
    from pgkura.cli import report
    from pgkura.inspection.doctor import diagnose

    findings = diagnose(settings)
    print(report.findings(findings))
    if any(f.level == "fail" for f in findings):
        raise Exit("doctor found problems (FAIL above)", code=1)


@task(
    help={
        "json": "print the whole report as JSON (for machines)",
        "snapshot": "also record the database's size now, for the growth section",
    }
)
def inspect(c: Context, settings: Settings, json: bool = False, snapshot: bool = False) -> None:
    """Connections, slow statements, locks, errors, space, bloat and growth, with a verdict."""
    from pgkura.cli.report import inspection
    from pgkura.engines.docker.compose import container_state
    from pgkura.inspection.database import inspect as look

    target = settings.target
    state = container_state(settings) if target.is_container else None
    report = look(target, container=settings.container_name if state and state.running
                  else None, snapshots=settings.backup_dir / ".pgkura-sizes.jsonl",
                  record=snapshot)  # fmt: skip
    print(report.to_json() if json else inspection(report))
    if any(a.level == "fail" for a in report.attention):
        raise Exit(code=1)
