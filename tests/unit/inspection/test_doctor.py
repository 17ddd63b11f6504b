"""db.doctor's checks that need no server: the .env file's presence and permissions."""

import os

from pgkura.config.settings import load_settings
from pgkura.inspection.doctor import diagnose


def findings(tmp_path, mode: int | None, environment: str):
    env_file = tmp_path / ".env"
    if mode is not None:
        env_file.write_text(f"PGKURA_ENV={environment}\nPOSTGRES_PASSWORD=s3cret\n")
        os.chmod(env_file, mode)
    # a DATABASE_URL nobody listens on: the Docker checks are skipped, the server check fails
    url = "postgresql://app:pw@127.0.0.1:9/app?connect_timeout=1"
    settings = load_settings(tmp_path, {"PGKURA_ENV": environment, "DATABASE_URL": url})
    return {f.check: f for f in diagnose(settings)}


def test_production_env_file_readable_by_others_fails(tmp_path):
    found = findings(tmp_path, 0o644, "production")
    assert found[".env"].level == "fail"
    assert f"chmod 600 {tmp_path / '.env'}" in found[".env"].detail
    assert found["server"].level == "fail"
    assert "docker" not in found  # DATABASE_URL: no container to check


def test_owner_only_env_file_passes(tmp_path):
    assert findings(tmp_path, 0o600, "production")[".env"].level == "ok"


def test_missing_env_file_warns_in_development_and_fails_in_production(tmp_path):
    assert findings(tmp_path, None, "development")[".env"].level == "warn"
    assert findings(tmp_path, None, "production")[".env"].level == "fail"
