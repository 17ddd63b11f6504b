"""Prometheus' own rule checker and tester (`promtool`, Debian's prometheus package, installed
by .ci/run): the alert rules in monitoring/prometheus, checked and fired on facts, and the
facts themselves checked against Prometheus' naming and type rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring" / "prometheus" / "pgkura-rules.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "pgkura-dashboard.json"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`promtool ARGS`; skipped where it is not installed (a failure in CI, which installs it)."""
    if shutil.which("promtool") is None:
        missing = "promtool is not installed (apt-get install prometheus; .ci/run does)"
        pytest.fail(missing) if os.environ.get("CI") else pytest.skip(missing)
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def metric_problems(text: str) -> str:
    """What `promtool check metrics` finds wrong in exposition text ("" when nothing): among
    Prometheus' rules, a value that can go down is a gauge and a total a counter named
    `…_total`, in base units."""
    done = promtool("check", "metrics", stdin=text)
    return "" if done.returncode == 0 else done.stdout + done.stderr


def fire(tmp_path: Path, series: dict[str, float], eval_minutes: int, expected: list[dict]) -> str:
    """Run the rules on `series` (each held constant) and expect these alerts at that time:
    [{"alertname": ..., "exp_alerts": [...]}]; promtool's output when they do not match."""
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": s, "values": f"{v!r}x{eval_minutes + 1}"}
                             for s, v in series.items()],
            "alert_rule_test": [{"eval_time": f"{eval_minutes}m", **e} for e in expected],
        }],
    }  # fmt: skip
    path = tmp_path / "rules.test.yml"
    path.write_text(json.dumps(test, ensure_ascii=False))  # JSON is YAML too
    done = promtool("test", "rules", str(path))
    return "" if done.returncode == 0 else done.stdout + done.stderr
