"""The alert rule file loads in Prometheus (`promtool check rules`) and its own unit tests pass
(`promtool test rules`: each alert fires on its facts, after its `for`, and not before)."""

from __future__ import annotations

from tests.promtool import RULES, promtool


def test_the_rules_load():
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 23 rules found" in done.stdout


def test_the_rules_fire_on_their_facts():
    done = promtool("test", "rules", str(RULES.with_name("pgkura-rules.test.yml")))
    assert done.returncode == 0, done.stdout + done.stderr
