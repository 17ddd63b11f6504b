from pathlib import Path

import pytest

from pgkura.config.settings import load_settings
from pgkura.dsn import parse_database_url, redact
from pgkura.errors import ConfigError


def settings(tmp_path: Path, env: dict[str, str] | None = None, dotenv: str = ""):
    (tmp_path / ".env").write_text(dotenv)
    return load_settings(tmp_path, env or {})


def test_defaults_match_the_compose_file(tmp_path):
    s = settings(tmp_path, {"PGKURA_ENGINE": "docker"})  # unrecorded, the choice probes Docker
    assert (s.postgres_user, s.postgres_db, s.postgres_host, s.postgres_port) == (
        "app",
        "app",
        "127.0.0.1",
        5432,
    )
    assert s.environment == "development"
    assert s.migrations_dir == tmp_path.resolve() / "db" / "migrations"
    assert s.lock_timeout_ms == 5000
    assert s.target.is_container


def test_dotenv_is_read_and_real_environment_wins(tmp_path):
    s = settings(
        tmp_path, {"POSTGRES_DB": "from_env"}, "POSTGRES_DB=from_file\nPOSTGRES_PORT=6543\n"
    )
    assert s.postgres_db == "from_env"
    assert s.postgres_port == 6543


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("POSTGRES_PORT", "54x2", "a port number"),
        ("POSTGRES_PORT", "70000", "a port number"),
        ("PGKURA_ENV", "staging", "development or production"),
        ("DATABASE_URL", "mysql://u:p@h/db", "a PostgreSQL URL"),
        ("PGKURA_LOCK_TIMEOUT", "5 parsecs", "a duration"),
        ("PGKURA_BACKUP_KEEP", "-1", "a whole number"),
        ("PGKURA_ALERT_SUCCESS", "maybe", "true or false"),
        ("PGKURA_BACKUP_COMPRESSION", "lz4", "gzip or zstd"),
        ("PGKURA_OFFSITE_URL", "https://bucket.s3.amazonaws.com/x", "an s3://bucket/prefix URL"),
        ("PGKURA_OFFSITE_URL", "s3://My_Bucket/x", "an s3://bucket/prefix URL"),
        ("PGKURA_OFFSITE_URL", "s3://bucket/a/../b", "an s3://bucket/prefix URL"),
        ("PGKURA_S3_SSE", "aes256", "AES256 or aws:kms"),
        ("PGKURA_S3_ENDPOINT", "minio:9000", "the S3 API's http:// or https:// URL"),
    ],
)
def test_invalid_values_name_the_variable_and_the_file(tmp_path, name, value, expected):
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, dotenv=f"{name}={value}\n")
    message = str(err.value)
    assert name in message
    assert str(tmp_path / ".env") in message
    assert expected in message


def test_invalid_value_from_environment_says_so(tmp_path):
    with pytest.raises(ConfigError, match="from the environment"):
        settings(tmp_path, {"POSTGRES_PORT": "nope"})


def test_environment_aliases(tmp_path):
    assert settings(tmp_path, {"PGKURA_ENV": "prod"}).is_production


@pytest.mark.parametrize(
    "url",
    [
        "postgres://app:secret@db.example.com:5433/appdb?sslmode=require",
        "postgresql://app:secret@db.example.com:5433/appdb?sslmode=require",
        "postgresql+asyncpg://app:secret@db.example.com:5433/appdb?ssl=require",
        "postgresql+psycopg://app:secret@db.example.com:5433/appdb?sslmode=require",
        "POSTGRESQL://app:secret@db.example.com:5433/appdb?sslmode=require",
    ],
)
def test_database_url_forms(url):
    params = parse_database_url(url)
    assert params == {
        "user": "app",
        "password": "secret",
        "host": "db.example.com",
        "port": "5433",
        "dbname": "appdb",
        "sslmode": "require",
    }


def test_url_encoded_password_is_decoded():
    assert parse_database_url("postgresql://app:p%40ss%3Aw%25rd@h/db")["password"] == "p@ss:w%rd"


def test_unknown_url_option_is_refused_without_echoing_the_password():
    with pytest.raises(ValueError, match="bogus") as err:
        parse_database_url("postgresql://app:hunter2@h/db?bogus=1")
    assert "bogus" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_database_url_selects_the_remote_target(tmp_path):
    s = settings(tmp_path, {"DATABASE_URL": "postgresql://u:pw@remote:5432/prod_db"})
    assert not s.target.is_container
    assert s.target.dbname == "prod_db"


def test_passwords_never_render(tmp_path):
    s = settings(
        tmp_path,
        {"DATABASE_URL": "postgresql://u:hunter2@remote/db?sslmode=require"},
        "POSTGRES_PASSWORD=swordfish\n",
    )
    for text in (repr(s), str(s.target), s.target.redacted(), repr(s.target)):
        assert "hunter2" not in text
        assert "swordfish" not in text
    assert s.target.redacted() == "postgresql://u:***@remote/db?sslmode=require"


@pytest.mark.parametrize(
    ("params", "rendered"),
    [
        ({"host": "h", "port": "5432", "user": "a b", "password": "x", "dbname": "d"},
         "postgresql://a%20b:***@h:5432/d"),
        ({"host": "/run/pg", "user": "app", "dbname": "app", "port": "5432"},
         "postgresql://app@/app?host=/run/pg&port=5432"),
        ({"host": "::1", "port": "5432", "dbname": "d"}, "postgresql://[::1]:5432/d"),
        ({"host": "h", "dbname": "d", "sslmode": "verify-full", "sslpassword": "keypass"},
         "postgresql://h/d?sslmode=verify-full&sslpassword=***"),
    ],
)  # fmt: skip
def test_redact_renders_urls(params, rendered):
    assert redact(params) == rendered


def test_child_processes_get_the_password_through_the_environment(tmp_path):
    s = settings(tmp_path, {"POSTGRES_PASSWORD": "swordfish"})
    conninfo, env = s.target.child_process_args()
    assert "swordfish" not in conninfo
    assert env == {"PGPASSWORD": "swordfish"}


def test_the_off_site_location_and_credentials_come_from_dotenv_too(tmp_path):
    s = settings(
        tmp_path,
        {"AWS_REGION": "auto"},
        "PGKURA_OFFSITE_URL=s3://team-backups/prod/app/\nPGKURA_S3_ENDPOINT=https://r2.example\n"
        "AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=not/to-be-shown\n",
    )
    assert s.offsite is not None
    assert (s.offsite.bucket, s.offsite.prefix, s.offsite.url) == (
        "team-backups",
        "prod/app/",
        "s3://team-backups/prod/app/",
    )
    assert s.offsite.endpoint == "https://r2.example"
    assert s.offsite.aws["AWS_SECRET_ACCESS_KEY"] == "not/to-be-shown"
    assert s.offsite.aws["AWS_REGION"] == "auto"
    assert "not/to-be-shown" not in repr(s)
    assert settings(tmp_path).offsite is None
