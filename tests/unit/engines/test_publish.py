import contextlib
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.config.settings import default_image
from pgkura.engines.docker.publish import (
    _private_config,
    credentials,
    is_published,
    login_argv,
    plan,
)
from pgkura.errors import ConfigError, PgkuraError
from tests.conftest import ROOT


def test_plan_tags_with_the_descriptive_tag_and_the_commit():
    p = plan(
        "pgkura-postgres:pg18-pgvector0.8.1-pgbigm1.2", "ghcr.io/Owner/Repo/", "0123456789abcdef"
    )
    assert p.host == "ghcr.io"
    assert p.refs == (
        "ghcr.io/owner/repo/pgkura-postgres:pg18-pgvector0.8.1-pgbigm1.2",
        "ghcr.io/owner/repo/pgkura-postgres:sha-0123456789abcdef",
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


def test_the_image_workflow_publishes_the_tags_docker_push_gives():
    """What CI publishes and what `invoke docker.push` publishes are the same refs."""
    workflow = (ROOT / ".github" / "workflows" / "image.yml").read_text()
    name, tag = default_image("full").split(":")
    assert f"images: ghcr.io/${{{{ github.repository }}}}/{name}" in workflow
    assert f"type=raw,value={tag}" in workflow
    assert "type=sha,format=long" in workflow  # sha-<full commit>
    assert re.search(r"target: full\b", workflow)
    commit = "f" * 40
    assert plan(default_image("full"), "ghcr.io/o/r", commit).refs == (
        f"ghcr.io/o/r/{name}:{tag}",
        f"ghcr.io/o/r/{name}:sha-{commit}",
    )


@pytest.mark.parametrize(
    ("image", "published"),
    [
        ("pgkura-postgres:pg18-full", False),
        ("team/pgkura-postgres:pg18-full", False),  # Docker Hub user/name: not ours to pull
        ("ghcr.io/o/r/pgkura-postgres:pg18-full", True),
        ("127.0.0.1:5000/pgkura-postgres:x", True),
        ("localhost/pgkura-postgres", True),
    ],
)
def test_a_published_image_names_its_registry(image, published):
    assert is_published(image) is published


@given(token=st.text(min_size=8, alphabet=st.characters(categories=["L", "N", "P"])))
def test_the_private_login_directory_keeps_no_stored_login_and_the_users_context(token):
    """The user's own logins are not copied, their current context and plugins are."""
    with contextlib.ExitStack() as stack:
        mine = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (mine / "contexts").mkdir()
        config = {"auths": {"ghcr.io": {"auth": token}}, "credsStore": "desktop",
                  "currentContext": "colima"}  # fmt: skip
        (mine / "config.json").write_text(json.dumps(config))
        private = _private_config(stack, mine)
        assert (private.stat().st_mode & 0o777) == 0o700
        written = (private / "config.json").read_text()
        # exactly the context: no login (a token may be any text, "currentC" included)
        assert json.loads(written) == {"currentContext": "colima"}
        assert (private / "contexts").resolve() == (mine / "contexts").resolve()
    assert not private.exists()
