"""Tests see none of the settings a user has exported (tests/conftest.py removes them)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, TEST_INPUTS, USER_SETTINGS

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def test_no_user_setting_reaches_a_test():
    leaked = [n for n in os.environ if n.startswith(USER_SETTINGS) and n not in TEST_INPUTS]
    assert leaked == ["PGKURA_ENV_FILE"]
    assert os.environ["PGKURA_ENV_FILE"] == os.devnull  # never the checkout's .env


def test_a_run_with_the_users_settings_exported_sees_none_of_them(tmp_path):
    """The same check in a pytest run started the way `bash scripts/test` starts one, with a
    user's engine, password, URL, libpq and cloud settings exported."""
    users = {
        "PGKURA_ENGINE": "embedded",
        "PGKURA_BACKUP_DIR": str(tmp_path / "users-backups"),
        "POSTGRES_PASSWORD": "users-own",
        "DATABASE_URL": "postgresql://app:users-own@127.0.0.1:5432/app",
        "PGHOST": "127.0.0.1",
        "PGPASSWORD": "users-own",
        "AWS_SECRET_ACCESS_KEY": "users-own",
    }
    result = subprocess.run(
        [*PYTEST, f"{__file__}::test_no_user_setting_reaches_a_test"],
        env={**os.environ, **users},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "users-own" not in result.stdout + result.stderr
