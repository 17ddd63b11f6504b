"""`docker.push`: publish the built image to a registry under its descriptive tag and the git
commit. The registry token is read from the environment and handed to `docker login` on
standard input: never argv, never printed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pgkura.compose import DockerError, require_docker, run
from pgkura.config import Settings
from pgkura.errors import ConfigError, PgkuraError

TOKEN_VARIABLES = ("PGKURA_REGISTRY_TOKEN", "GITHUB_TOKEN")
USER_VARIABLES = ("PGKURA_REGISTRY_USER", "GITHUB_ACTOR")


@dataclass(frozen=True)
class PushPlan:
    source: str  # the local image
    host: str  # what `docker login` is given
    refs: tuple[str, ...]  # registry/name:tag for each tag


def plan(image: str, registry: str, commit: str) -> PushPlan:
    """Refs for `image` under `registry` (e.g. ghcr.io/owner/repo): descriptive tag + commit."""
    registry = registry.strip().rstrip("/").lower()
    if not registry or "://" in registry or " " in registry:
        raise PgkuraError(f"--registry {registry!r}: expected e.g. ghcr.io/owner/repo")
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        name, tag = image, "latest"
    repo = f"{registry}/{name.rsplit('/', 1)[-1]}"
    return PushPlan(
        image, registry.split("/", 1)[0], (f"{repo}:{tag}", f"{repo}:git-{commit[:12]}")
    )


def credentials(environ: Mapping[str, str]) -> tuple[str, str]:
    """(user, token) from the environment; ConfigError naming the variables when missing."""
    token = next((environ[v] for v in TOKEN_VARIABLES if environ.get(v)), "")
    user = next((environ[v] for v in USER_VARIABLES if environ.get(v)), "")
    if not token or not user:
        raise ConfigError(
            "pushing needs registry credentials in the environment: "
            f"{' or '.join(TOKEN_VARIABLES)} (a token allowed to write packages) and "
            f"{' or '.join(USER_VARIABLES)} (its user). They are never taken from the command line."
        )
    return user, token


def login_argv(host: str, user: str) -> list[str]:
    """`docker login`, password on standard input."""
    return ["docker", "login", host, "--username", user, "--password-stdin"]


def git_commit(settings: Settings) -> str:
    result = subprocess.run(
        ["git", "-C", str(settings.root), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PgkuraError(f"cannot tell the git commit to tag with: {result.stderr.strip()}")
    return result.stdout.strip()


def push(settings: Settings, registry: str, log: Callable[[str], None]) -> list[str]:
    """Tag, log in, push; the pushed refs with their digests."""
    require_docker()
    user, token = credentials(os.environ)
    target = plan(settings.image, registry, git_commit(settings))
    run(["docker", "image", "inspect", target.source], what=f"image {target.source}")
    login = subprocess.run(
        login_argv(target.host, user), input=token, capture_output=True, text=True, check=False
    )
    if login.returncode != 0:
        raise DockerError(f"docker login {target.host} failed: {login.stderr.strip()}")
    pushed = []
    for ref in target.refs:
        run(["docker", "tag", target.source, ref], what="docker tag")
        log(f"pushing {ref}")
        run(["docker", "push", ref], what=f"docker push {ref}")
        digest = run(
            ["docker", "image", "inspect", "--format", '{{join .RepoDigests "\\n"}}', ref],
            what="docker image inspect",
        )
        mine = [d for d in digest.split() if d.startswith(ref.rsplit(":", 1)[0] + "@")]
        pushed.append(mine[0] if mine else ref)
    return pushed
