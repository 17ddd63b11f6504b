"""PG_BIGM_SOURCE / PG_BIGM_SHA256 / PGKURA_BUILD_NETWORK as typed, and staging a local archive
into the build context."""

import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.config.bigm_source import DEFAULT_URL, BigmSource, parse_location
from pgkura.config.settings import DEFAULT_BASE_IMAGE, default_image, load_settings
from pgkura.engines.docker.compose import compose_env
from pgkura.errors import ConfigError
from pgkura.extensions.bigm_source import STAGING_DIR, staged
from tests.conftest import ROOT


def settings(tmp_path: Path, **env: str):
    return load_settings(tmp_path, env)


def test_defaults_download_the_release_and_name_the_target(tmp_path):
    s = settings(tmp_path)
    assert s.pg_bigm == BigmSource(url=DEFAULT_URL)
    assert s.pg_bigm.build_arg == DEFAULT_URL
    assert s.build_network is None
    assert s.image == "pgkura-postgres:pg18-full"
    assert settings(tmp_path, PGKURA_BUILD_TARGET="runtime").image == "pgkura-postgres:pg18-runtime"


def test_the_defaults_are_those_of_the_compose_file_and_dockerfile():
    compose = (ROOT / "docker-compose.yml").read_text()
    dockerfile = (ROOT / "docker" / "postgres" / "Dockerfile").read_text()

    def default(name: str) -> str:
        found = re.search(r"\$\{" + name + r":-([^}$]*)", compose)
        assert found, name
        return found.group(1)

    assert default("PG_BASE_IMAGE") == DEFAULT_BASE_IMAGE
    assert f"ARG PG_BASE_IMAGE={DEFAULT_BASE_IMAGE}\n" in dockerfile
    assert default("PG_BIGM_SOURCE") == DEFAULT_URL
    assert f"ARG PG_BIGM_SOURCE={DEFAULT_URL}\n" in dockerfile
    assert "image: ${PGKURA_IMAGE:-pgkura-postgres:pg18-${PGKURA_BUILD_TARGET:-full}}" in compose
    assert default_image("full") == "pgkura-postgres:pg18-full"


def test_the_runtime_image_claims_no_pg_bigm_and_no_pgvector_version():
    name = default_image("runtime")
    assert "bigm" not in name
    assert not re.search(r"vector\d", default_image("full"))


def test_a_path_is_relative_to_the_project_and_passes_its_file_name(tmp_path):
    s = settings(tmp_path, PG_BIGM_SOURCE="vendor/pg_bigm-1.2.tar.gz")
    assert s.pg_bigm.path == tmp_path.resolve() / "vendor" / "pg_bigm-1.2.tar.gz"
    assert s.pg_bigm.build_arg == "pg_bigm-1.2.tar.gz"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PG_BIGM_SOURCE", "ftp://example.com/pg_bigm.tar.gz", "a https:// URL or a file's path"),
        ("PG_BIGM_SOURCE", "git+ssh://host/repo", "only http:// and https://"),
        ("PG_BIGM_SHA256", "abc", "64 hexadecimal digits"),
        ("PG_BIGM_SHA256", "g" * 64, "the archive's SHA-256"),
        ("PGKURA_BUILD_NETWORK", "host network", "a Docker network for build steps"),
        ("PGKURA_BUILD_NETWORK", "-host", "a Docker network for build steps"),
    ],
)
def test_invalid_values_are_named(tmp_path, name, value, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)) as err:
        settings(tmp_path, **{name: value})
    assert name in str(err.value)


def test_a_sha256_is_normalised_and_networks_are_passed(tmp_path):
    s = settings(tmp_path, PG_BIGM_SHA256=" " + "AB" * 32 + " ", PGKURA_BUILD_NETWORK="host")
    assert s.pg_bigm.sha256 == "ab" * 32
    assert s.build_network == "host"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_any_text_is_a_url_a_path_or_refused_never_both(text):
    try:
        source = parse_location(text, Path("/project"))
    except ValueError:
        assert "://" in text or not text.strip() or text.strip().startswith("~")
        return
    assert (source.url is None) != (source.path is None)
    if source.path is not None:
        assert source.path.is_absolute()
        assert "/" not in source.build_arg
    else:
        assert source.build_arg == text.strip()


@given(st.from_regex(r"https?://[a-z0-9.-]{1,20}(/[A-Za-z0-9._~%-]{0,20}){0,4}", fullmatch=True))
def test_http_urls_are_downloaded_as_given(url):
    assert parse_location(url, Path("/p")) == BigmSource(url=url)


@pytest.fixture
def archive(tmp_path) -> Path:
    path = tmp_path / "elsewhere" / "pg_bigm-1.2-20250903.tar.gz"
    path.parent.mkdir()
    path.write_bytes(b"not really a tarball, but bytes to copy")
    return path


def test_a_local_archive_is_staged_for_the_build_and_removed_after(tmp_path, archive):
    project = tmp_path / "project"
    staged_copy = project / STAGING_DIR / archive.name
    with staged(BigmSource(path=archive), project):
        assert staged_copy.read_bytes() == archive.read_bytes()
    assert not staged_copy.exists()
    assert archive.exists()


def test_the_copy_is_removed_when_the_build_fails(tmp_path, archive):
    project = tmp_path / "project"
    with pytest.raises(RuntimeError), staged(BigmSource(path=archive), project):
        raise RuntimeError("docker compose build failed")
    assert not (project / STAGING_DIR / archive.name).exists()


def test_an_archive_already_there_is_used_and_left_alone(tmp_path, archive):
    project = tmp_path / "project"
    mine = project / STAGING_DIR / archive.name
    mine.parent.mkdir(parents=True)
    mine.write_bytes(archive.read_bytes())
    with staged(BigmSource(path=archive), project):
        pass
    with staged(BigmSource(path=mine), project):  # PG_BIGM_SOURCE pointing at it
        pass
    assert mine.read_bytes() == archive.read_bytes()


def test_a_different_file_of_that_name_is_not_overwritten(tmp_path, archive):
    project = tmp_path / "project"
    theirs = project / STAGING_DIR / archive.name
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"someone else's archive")
    with (
        pytest.raises(ConfigError, match="will not overwrite it"),
        staged(BigmSource(path=archive), project),
    ):
        pytest.fail("nothing may be built")
    assert theirs.read_bytes() == b"someone else's archive"


def test_a_wrong_sha256_stages_nothing(tmp_path, archive):
    project = tmp_path / "project"
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    with staged(BigmSource(path=archive, sha256=good), project):
        pass
    with (
        pytest.raises(ConfigError, match="a different or damaged archive"),
        staged(BigmSource(path=archive, sha256="f" * 64), project),
    ):
        pytest.fail("nothing may be built")
    assert not (project / STAGING_DIR).exists() or not any((project / STAGING_DIR).iterdir())


def test_a_missing_archive_is_named(tmp_path):
    missing = tmp_path / "nope.tar.gz"
    expected = f"PG_BIGM_SOURCE {re.escape(str(missing))} does not"
    with pytest.raises(ConfigError, match=expected), staged(BigmSource(path=missing), tmp_path):
        pytest.fail("nothing may be built")


def test_a_url_stages_nothing(tmp_path):
    with staged(BigmSource(url=DEFAULT_URL), tmp_path):
        pass
    assert not (tmp_path / STAGING_DIR).exists()


def test_a_pgkura_started_from_composes_environment_reads_the_same_source(
    tmp_path, archive, monkeypatch
):
    """compose_env gives Compose the archive's file name; PG_BIGM_SOURCE itself stays the path,
    so a pgkura run in that environment (a benchmark, a hook) still finds the archive."""
    monkeypatch.setenv("PG_BIGM_SOURCE", str(archive))
    s = load_settings(tmp_path)
    env = compose_env(s)
    assert env["PGKURA_PG_BIGM_ARG"] == archive.name
    assert load_settings(tmp_path, env).pg_bigm == s.pg_bigm
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "PG_BIGM_SOURCE: ${PGKURA_PG_BIGM_ARG:-${PG_BIGM_SOURCE:-" in compose
