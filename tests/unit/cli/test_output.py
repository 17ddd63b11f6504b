"""The one output layer: colour only for a person's terminal, JSON documents of a fixed shape."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime

import pytest

from pgkura.cli import report
from pgkura.cli.output import Output, colour_wanted
from pgkura.extensions.check import ExtensionStatus
from pgkura.inspection.database import Attention, Report, Section
from pgkura.inspection.doctor import Finding
from pgkura.migrations.plan import StatusEntry
from pgkura.migrations.schema_snapshot import Drift
from pgkura.migrations.version_table import AppliedRow


@pytest.fixture
def terminal():
    """A real pseudo-terminal, as a person's shell gives one."""
    main, side = os.openpty()
    stream = open(side, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    yield stream
    stream.close()
    os.close(main)


@pytest.fixture
def pipe():
    read, write = os.pipe()
    stream = open(write, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    yield stream
    stream.close()
    os.close(read)


def test_colour_on_a_terminal_only(terminal, pipe):
    assert colour_wanted(terminal, {"TERM": "xterm-256color"})
    assert not colour_wanted(terminal, {"NO_COLOR": "1"})
    assert not colour_wanted(terminal, {"TERM": "dumb"})
    assert not colour_wanted(pipe, {})
    assert not colour_wanted(io.StringIO(), {})


def test_paint_changes_nothing_without_colour(terminal, pipe):
    coloured, piped = Output.to(terminal, {}), Output.to(pipe, {})
    assert coloured.paint("FAIL", "fail") == "\x1b[1;31mFAIL\x1b[0m"
    assert coloured.paint("plain", "") == "plain"
    assert piped.paint("FAIL", "fail") == "FAIL"


def test_the_verdict_comes_first_and_uncoloured_when_piped():
    stream = io.StringIO()
    out = Output(stream)
    items = [Finding("docker", "ok", "running"), Finding("server", "fail", "refused\nstart it")]
    out.verdict(*report.doctor_verdict(items))
    out.line(report.findings(items, out.paint))
    assert stream.getvalue().splitlines() == [
        "verdict: 1 problem(s): server (FAIL below)",
        "[ok  ] docker      running",
        "[FAIL] server      refused",
        "                   start it",
    ]


def test_tables_line_up_japanese_names():
    lines = report.table(["テーブル", "rows"], [["注文", "1"], ["users", "22"]]).splitlines()
    assert lines == ["テーブル  rows", "--------  ----", "注文      1", "users     22"]
    coloured = report.table(["state", "n"], [["\x1b[31mFAIL\x1b[0m", "1"], ["ok", "2"]])
    assert coloured.splitlines()[1] == "-----  -"


def test_json_documents_have_their_documented_keys():
    stream = io.StringIO()
    applied = AppliedRow(1, "a", "c" * 64, datetime(2026, 11, 30, tzinfo=UTC), 12, "app", "applied")
    entries = [
        StatusEntry(1, "a", "applied", applied, None),
        StatusEntry(2, "b", "pending", None, None),
    ]
    Output(stream).json(report.status_json(entries, "postgresql://app:***@db/app", False))
    status = json.loads(stream.getvalue())
    assert status["counts"] == {"applied": 1, "pending": 1}
    assert status["migrations"][0] == {
        "version": 1, "name": "a", "state": "applied", "applied_at": "2026-11-30T00:00:00+00:00",
        "duration_ms": 12, "applied_by": "app",
    }  # fmt: skip

    assert report.doctor_json([Finding("docker", "warn", "slow")])["verdict"] == "warn"
    extensions = report.extensions_json([ExtensionStatus("vector", "0.8.6", None)], "t", None)
    assert (extensions["verdict"], extensions["extensions"][0]["state"]) == ("fail", "available")
    drift = report.drift_json(Drift(["TABLE public.x"], [], {}), "t", "schema.sql")
    assert set(drift) == {"clean", "target", "snapshot", "added", "removed", "changed"}

    inspected = Report([Section("unused indexes", ["index"], [], "since the statistics were last reset")],
                       [Attention("warn", "x", "y")])  # fmt: skip
    shaped = report.inspection_json(inspected)
    assert set(shaped) == {"verdict", "summary", "facts", "attention", "sections", "notes"}
    assert shaped["notes"] == {"unused indexes": "since the statistics were last reset"}
    assert shaped["verdict"] == "warn"


def test_json_keeps_japanese_as_it_is():
    stream = io.StringIO()
    Output(stream).json({"database": "在庫"})
    assert '"在庫"' in stream.getvalue()
