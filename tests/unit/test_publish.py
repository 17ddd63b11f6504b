import pytest

from pgkura.errors import ConfigError, PgkuraError
from pgkura.publish import credentials, login_argv, plan


def test_plan_tags_with_the_descriptive_tag_and_the_commit():
    p = plan(
        "pgkura-postgres:pg18-pgvector0.8.1-pgbigm1.2", "ghcr.io/Owner/Repo/", "0123456789abcdef"
    )
    assert p.host == "ghcr.io"
    assert p.refs == (
        "ghcr.io/owner/repo/pgkura-postgres:pg18-pgvector0.8.1-pgbigm1.2",
        "ghcr.io/owner/repo/pgkura-postgres:git-0123456789ab",
    )


def test_plan_refuses_urls():
    with pytest.raises(PgkuraError, match=r"expected e\.g\. ghcr\.io/owner/repo"):
        plan("img:tag", "https://ghcr.io/owner", "abc")


def test_token_goes_to_stdin_never_argv():
    user, token = credentials({"GITHUB_TOKEN": "ghp_secret", "GITHUB_ACTOR": "octo"})
    argv = login_argv("ghcr.io", user)
    assert token == "ghp_secret"
    assert "ghp_secret" not in " ".join(argv)
    assert argv[-1] == "--password-stdin"


def test_pgkura_variables_win_over_github_ones():
    env = {"PGKURA_REGISTRY_TOKEN": "t1", "PGKURA_REGISTRY_USER": "u1", "GITHUB_TOKEN": "t2"}
    assert credentials(env) == ("u1", "t1")


def test_missing_token_is_a_clear_error():
    with pytest.raises(ConfigError, match="PGKURA_REGISTRY_TOKEN or GITHUB_TOKEN"):
        credentials({"GITHUB_ACTOR": "octo"})
