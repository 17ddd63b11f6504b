"""Nox sessions: the same checks on a laptop and in CI.

nox -s lint tests migrations      # what CI runs before the e2e tier
nox -s migrations -- --migrations-dir DIR --init-sql FILE
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "migrations"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
# The interpreter nox itself runs on (scripts/test's .venv): any Python the package supports
# (>= 3.11), not only the one a pin would name (a machine with only 3.12 could not run the tests).
PYTHON = None
DEV = ".[dev]"


def _install(session: nox.Session) -> None:
    """The package and its development tools, in the session's own environment. With
    `--no-venv` (scripts/test) every session shares the environment nox runs from, which
    already has them: one install instead of one per session."""
    if session.venv_backend != "none":
        session.install("-e", DEV)


def _sql(pattern: str, *dirs: str) -> list[str]:
    return sorted(str(p) for d in dirs for p in (ROOT / d).glob(pattern))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, mypy, the docs in English and Japanese in step, hadolint (Dockerfile), GitHub
    workflow schema, squawk (migrations)."""
    _install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    # the architecture: no import cycle, no upward import ([tool.importlinter], ARCHITECTURE.md)
    session.run("lint-imports")
    session.run("python", "scripts/check_readmes.py")  # README and docs/, English and Japanese
    session.run("hadolint", "docker/postgres/Dockerfile", "docker/exporter/Dockerfile")
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    dirs = (
        "db/migrations",
        "examples/documents/migrations",
        "tests/fixtures/vector_only/migrations",
    )
    ups = [p for p in _sql("*.sql", *dirs) if not p.endswith(".down.sql")]
    session.run("squawk", "--config", ".squawk.toml", *ups)
    # Down files undo things by nature: dropping what the up file added is their job. A
    # command-line --exclude replaces the config's list, so pass both.
    config = tomllib.loads((ROOT / ".squawk.toml").read_text())
    excluded = ",".join([*config["excluded_rules"], "ban-drop-column"])
    session.run(
        "squawk", "--config", ".squawk.toml", "--exclude", excluded, *_sql("*.down.sql", *dirs)
    )


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit and integration tiers (a throwaway PostgreSQL 18 for the latter)."""
    _install(session)
    session.run("pytest", "tests/unit", "tests/integration", *session.posargs)


@nox.session(python=PYTHON)
def migrations(session: nox.Session) -> None:
    """init.sql + every migration on a fresh server, version rows, rollback round trip: db/,
    then the example schema (examples/documents)."""
    _install(session)
    session.run("invoke", "db.check-migrations", *session.posargs)
    examples = {"PGKURA_MIGRATIONS_DIR": str(ROOT / "examples" / "documents" / "migrations")}
    session.run("invoke", "db.check-migrations", *session.posargs, env=examples)


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """The e2e tier on a real Docker engine (skips, saying why, when none is reachable)."""
    _install(session)
    session.run("pytest", "tests/e2e", "-rs", *session.posargs)


@nox.session(python=PYTHON)
def rehearsal(session: nox.Session) -> None:
    """A production rehearsal on a real Docker engine: GBs of application-shaped data, the real
    tasks under a concurrent load (PGKURA_REHEARSAL_SIZE_MB scales it)."""
    _install(session)
    session.run("pytest", "tests/rehearsal", "-rs", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Side-by-side benchmarks (the up one needs a Docker engine); figures in docs/benchmarks.md."""
    _install(session)
    session.run("python", "-m", "benchmarks.migrate_vs_dbmate", *session.posargs)
    session.run("python", "-m", "benchmarks.deflate_levels")
    session.run("python", "-m", "benchmarks.up_vs_compose_wait")
    session.run("python", "-m", "benchmarks.backup_vs_raw")
    session.run("python", "-m", "benchmarks.startup")
    session.run("python", "-m", "benchmarks.pitr_vs_logical")
    # real SQLite files to import (e.g. Northwind), and a generated one of three million rows
    sqlite_files = [f for f in os.environ.get("PGKURA_BENCH_SQLITE", "").split(os.pathsep) if f]
    if shutil.which("pgloader"):
        session.run("python", "-m", "benchmarks.sqlite_vs_pgloader", *sqlite_files,
                    "--generated", "3000000", "--repeat", "1")  # fmt: skip
    else:
        session.log("sqlite_vs_pgloader skipped: pgloader is not installed")
