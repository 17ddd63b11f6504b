"""The `metrics` Compose profile on the real image: PGKURA_METRICS=on runs postgres_exporter
beside the server, logged in as a least-privilege pg_monitor role through the socket, published
on 127.0.0.1 only; its /metrics, scraped and parsed, carries the server's core series."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.promtool import DASHBOARD, RULES

from .conftest import Project, container_exists, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def watched(project: Project) -> Project:
    project.env.update(PGKURA_METRICS="on", PGKURA_METRICS_PORT=str(free_port()),
                       PGKURA_EXPORTER_IMAGE="pgkura-postgres-exporter:e2e")  # fmt: skip
    up = project.invoke("db.up", "--build")
    assert up.returncode == 0, up.stderr
    assert "metrics: created the role pgkura_monitor (pg_monitor)" in up.stderr
    where = f"http://127.0.0.1:{project.env['PGKURA_METRICS_PORT']}/metrics"
    assert f"metrics: postgres_exporter at {where}" in up.stdout
    return project


def scrape(project: Project) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exporter's samples once it reaches the server (it connects at each scrape)."""
    url = f"http://127.0.0.1:{project.env['PGKURA_METRICS_PORT']}/metrics"
    for _ in range(120):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()
        except OSError:  # the exporter is still starting
            text = ""
        found = {(s.name, tuple(sorted(s.labels.items()))): s.value
                 for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip
        if found.get(("pg_up", ())) == 1:
            return found
        time.sleep(0.5)
    pytest.fail(f"the exporter never reached the server; last /metrics:\n{text[-2000:]}")


def test_the_exporter_serves_the_server_s_core_series(watched: Project):
    found = scrape(watched)
    names = {name for name, _ in found}
    for core in ("pg_stat_database_xact_commit_total", "pg_stat_database_xact_rollback_total",
                 "pg_stat_database_deadlocks_total", "pg_database_size_bytes",
                 "pg_stat_activity_count", "pg_settings_max_connections"):  # fmt: skip
        assert core in names, sorted(n for n in names if n.startswith("pg_"))
    assert found["pg_database_size_bytes", (("datname", "app"),)] > 0
    # every series the alert rules and the dashboard read from the server is there
    read = RULES.read_text() + DASHBOARD.read_text()
    assert set(re.findall(r"\b(pg_[a-z_]+)\b", read)) <= names


def test_the_exporter_is_least_privileged_and_local_only(watched: Project):
    role = watched.sql(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
        "pg_has_role('pgkura_monitor', 'pg_monitor', 'member') "
        "FROM pg_roles WHERE rolname = 'pgkura_monitor'"
    )
    assert [c.strip() for c in role.splitlines()[2].split("|")] == ["f"] * 5 + ["t"]
    published = subprocess.run(
        ["docker", "port", f"{watched.container}-exporter", "9187"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert published == [f"127.0.0.1:{watched.env['PGKURA_METRICS_PORT']}"]


def test_db_metrics_reads_pgkura_s_facts_from_the_container(watched: Project):
    done = watched.invoke("db.metrics")
    assert done.returncode == 0, done.stderr
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in text_string_to_metric_families(done.stdout) for s in f.samples}  # fmt: skip
    for collector in ("backups", "schedule", "database"):
        assert found["pgkura_collector_success", (("collector", collector),)] == 1
    ups = [p for p in (watched.schema / "migrations").glob("*.sql") if ".down." not in p.name]
    assert found["pgkura_migrations_pending", ()] == len(ups)  # db.migrate never ran here
    assert found["pgkura_migrations_applied", ()] == 0


def test_turning_metrics_off_removes_the_exporter(watched: Project):
    """Compose starts only the profiles named, so it would leave the exporter running."""
    exporter = f"{watched.container}-exporter"
    up = watched.invoke("db.up", PGKURA_METRICS="off")
    assert up.returncode == 0, up.stderr
    assert f"PGKURA_METRICS is off: removed the exporter ({exporter})" in up.stderr
    assert not container_exists(exporter)
    assert "PGKURA_METRICS" not in watched.invoke("db.up").stderr  # said once, when it went
