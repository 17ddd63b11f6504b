"""The off-site storage as pgBackRest's second repository: when Compose gets it, what it is
given, and the settings that cannot work refused with their remedy before Compose runs."""

from __future__ import annotations

import pytest

from pgkura.config.settings import load_settings
from pgkura.engines.docker.compose import compose_argv, compose_env, compose_files
from pgkura.engines.docker.pgbackrest import repositories
from pgkura.engines.docker.s3_repository import FILE, S3RepositoryError
from pgkura.errors import ConfigError

KEYS = {"AWS_ACCESS_KEY_ID": "AKIAPGKURA", "AWS_SECRET_ACCESS_KEY": "s3-Secret/xyz"}


def settings_with(tmp_path, **env):
    return load_settings(tmp_path, {"POSTGRES_PASSWORD": "pw", **env})


def test_only_pitr_with_an_offsite_location_adds_the_repository(tmp_path):
    offsite = {"PGKURA_OFFSITE_URL": "s3://team-backups/db", **KEYS}
    for env in ({}, offsite, {"PGKURA_PITR": "on"}):
        plain = settings_with(tmp_path, **env)
        assert FILE not in [p.name for p in compose_files(plain)]
        assert "PGKURA_PITR_S3_BUCKET" not in compose_env(plain)
        assert repositories(plain) == (1,)
    both = settings_with(tmp_path, PGKURA_PITR="on", **offsite)
    assert compose_files(both)[-1] == tmp_path / FILE
    assert repositories(both) == (1, 2)


def test_an_endpoint_with_a_private_ca(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = settings_with(tmp_path, PGKURA_PITR="on", PGKURA_OFFSITE_URL="s3://bucket1/db/x",
                             PGKURA_S3_ENDPOINT="https://s3.internal:9000", AWS_REGION="jp-1",
                             PGKURA_S3_CA_FILE="ca.pem", **KEYS)  # fmt: skip
    env = compose_env(settings)
    assert {k: env[k] for k in env if k.startswith("PGKURA_PITR_S3_")} == {
        "PGKURA_PITR_S3_BUCKET": "bucket1",
        "PGKURA_PITR_S3_PATH": "/db/x/pgbackrest",  # beside the dumps, in its own folder
        "PGKURA_PITR_S3_HOST": "s3.internal",
        "PGKURA_PITR_S3_PORT": "9000",
        "PGKURA_PITR_S3_REGION": "jp-1",
        "PGKURA_PITR_S3_URI_STYLE": "path",
        "PGKURA_PITR_S3_CA_FILE": str(ca),
        "PGKURA_PITR_S3_CA": "/etc/pgkura/s3-ca.pem",
    }
    assert env["AWS_SECRET_ACCESS_KEY"] == KEYS["AWS_SECRET_ACCESS_KEY"]
    # the keys travel in Compose's environment, never on its command line
    assert not any("s3-Secret" in a or "AKIAPGKURA" in a for a in compose_argv(settings, "up"))


def test_aws_itself_with_the_public_cas(tmp_path):
    settings = settings_with(tmp_path, PGKURA_PITR="on", PGKURA_OFFSITE_URL="s3://bucket1",
                             AWS_DEFAULT_REGION="ap-northeast-1", **KEYS)  # fmt: skip
    env = compose_env(settings)
    assert env["PGKURA_PITR_S3_HOST"] == "s3.ap-northeast-1.amazonaws.com"
    assert (env["PGKURA_PITR_S3_PORT"], env["PGKURA_PITR_S3_URI_STYLE"]) == ("443", "host")
    assert env["PGKURA_PITR_S3_PATH"] == "/pgbackrest"
    assert env["PGKURA_PITR_S3_CA_FILE"] == "/dev/null"
    assert env["PGKURA_PITR_S3_CA"] == "/etc/ssl/certs/ca-certificates.crt"


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"PGKURA_S3_ENDPOINT": "http://127.0.0.1:9000", **KEYS}, "only over TLS"),
        ({"AWS_PROFILE": "team"}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        # pgBackRest encrypts only with a KMS key ID or a customer key: never silently less
        ({"PGKURA_S3_SSE": "AES256", **KEYS}, "PGKURA_S3_SSE=AES256 cannot be asked"),
        ({"PGKURA_S3_SSE": "aws:kms", **KEYS}, "bucket's own default"),
    ],
)
def test_settings_pgbackrest_cannot_use_are_refused_with_the_remedy(tmp_path, env, said):
    settings = settings_with(tmp_path, PGKURA_PITR="on", PGKURA_OFFSITE_URL="s3://bucket1", **env)
    with pytest.raises(S3RepositoryError, match=said):
        compose_env(settings)
    # the same settings without PITR: the dumps' copies (boto3) can use them
    assert "PGKURA_PITR_S3_HOST" not in compose_env(settings_with(tmp_path, **env))


def test_a_ca_file_that_is_not_there_is_named(tmp_path):
    with pytest.raises(ConfigError, match="PGKURA_S3_CA_FILE"):
        settings_with(tmp_path, PGKURA_S3_CA_FILE="missing.pem")
