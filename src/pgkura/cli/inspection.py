"""Tasks that judge the database and report on it: extensions, doctor, inspect, metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.output import Output
from pgkura.cli.wiring import say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings


@task(
    help={
        "ensure": "CREATE EXTENSION IF NOT EXISTS each required extension, then verify",
        "json": "print the report as JSON (for machines)",
    }
)
def extensions(c: Context, settings: Settings, ensure: bool = False, json: bool = False) -> None:
    """health: the required extensions, installed?

    Show the required extensions (PGKURA_EXTENSIONS), available and installed versions.

    Examples:
      invoke db.extensions
      invoke db.extensions --ensure
      invoke db.extensions --json
    """
    from pgkura.cli import report
    from pgkura.engines.readiness import ready
    from pgkura.extensions import check as ext

    target, names, out = settings.target, settings.required_extensions, Output.to()
    ready(settings)
    items = ext.ensure(target, names) if ensure else ext.check(target, names)
    warning = ext.pgvector_warning(items)
    if json:
        out.json(report.extensions_json(items, target.redacted(), warning))
    else:
        out.verdict(*report.extensions_verdict(items, warning))
        out.line(f"target: {target.redacted()}")
        out.line(report.extensions_table(items))
        if warning:
            say(f"warning: {warning}")
    if any(not s.installed for s in items):
        raise Exit("error: not every required extension is installed; "
                   "run `invoke db.extensions --ensure`")  # fmt: skip


@task(help={"json": "print the findings as JSON (for machines)"})
def doctor(c: Context, settings: Settings, json: bool = False) -> None:
    """health: check the whole setup, verdict first

    Check Docker, .env, port, container, server, extensions, migrations and backups.

    Examples:
      invoke db.doctor
      invoke db.doctor --json
    """
    from pgkura.cli import report
    from pgkura.inspection.doctor import diagnose

    findings, out = diagnose(settings), Output.to()
    if json:
        out.json(report.doctor_json(findings))
    else:
        out.verdict(*report.doctor_verdict(findings))
        out.line(report.findings(findings, out.paint))
    if any(f.level == "fail" for f in findings):
        raise Exit("doctor found problems (FAIL in its report)", code=1)


@task(
    help={
        "json": "print the whole report as JSON (for machines)",
        "snapshot": "also record the database's size now, for the growth section",
    }
)
def inspect(c: Context, settings: Settings, json: bool = False, snapshot: bool = False) -> None:
    """health: activity, locks, space, bloat; a verdict

    Connections, slow statements, locks, errors, space, bloat and growth, with a verdict.

    Examples:
      invoke db.inspect
      invoke db.inspect --json --snapshot
    """
    from pgkura.cli import report as render
    from pgkura.engines.docker.compose import container_state
    from pgkura.inspection.database import inspect as look

    target, out = settings.target, Output.to()
    state = container_state(settings) if target.is_container else None
    report = look(target, container=settings.container_name if state and state.running
                  else None, snapshots=settings.backup_dir / ".pgkura-sizes.jsonl",
                  record=snapshot)  # fmt: skip
    if json:
        out.json(render.inspection_json(report))
    else:
        out.line(render.inspection(report, out.paint))
    if any(a.level == "fail" for a in report.attention):
        raise Exit(code=1)


@task(
    help={
        "textfile": "write them to this .prom file, atomically, for node_exporter's textfile "
        "collector (default PGKURA_METRICS_TEXTFILE; neither: print them)",
    }
)
def metrics(c: Context, settings: Settings, textfile: str = "") -> None:
    """health: pgkura's facts as Prometheus metrics

    pgkura's facts as Prometheus metrics: the newest backup and off-site copy, scheduled jobs
    and drills, pending migrations, WAL archiving (docs/metrics.md).

    Examples:
      invoke db.metrics
      invoke db.metrics --textfile /var/lib/node_exporter/textfile/pgkura.prom
    """
    from pgkura import validation as v
    from pgkura.metrics.facts import collect, publish

    path = v.FILE_PATH.flag(textfile, "--textfile") if textfile else settings.metrics_textfile
    if path is None:
        from pgkura.metrics.exposition import render

        facts = collect(settings)
        print(render(facts.families), end="")
    else:
        facts = publish(settings, path)
        print(f"wrote {path}")
    for collector, why in facts.failures.items():
        say(f"warning: the {collector} facts could not be read: {why}")
