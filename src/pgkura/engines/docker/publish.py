"""`docker.push`: publish the built image to a registry under its descriptive tag and the git
commit. The registry token is read from the environment and handed to `docker login` on
standard input: never argv, never printed."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pgkura.config.settings import Settings
from pgkura.engines.docker.compose import DockerError, require_docker, run
from pgkura.errors import ConfigError, PgkuraError

TOKEN_VARIABLES = ("PGKURA_REGISTRY_TOKEN", "GITHUB_TOKEN")
USER_VARIABLES = ("PGKURA_REGISTRY_USER", "GITHUB_ACTOR")
_REGISTRY = (
    "check that the image exists there and that the login may read and write it "
    f"({' / '.join(TOKEN_VARIABLES)})"
)


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
    # sha-<commit>: the tag the image workflow's metadata-action gives (type=sha,format=long)
    return PushPlan(image, registry.split("/", 1)[0], (f"{repo}:{tag}", f"{repo}:sha-{commit}"))


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


def is_published(image: str) -> bool:
    """Whether `image` names a registry (Docker's rule: a first part holding '.' or ':', or
    'localhost'); a bare name is an image built here."""
    first, sep, _ = image.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


@contextlib.contextmanager
def logged_in(
    host: str, environ: Mapping[str, str], *, keep: bool = False
) -> Iterator[dict[str, str]]:
    """The docker CLI's environment, logged in to `host` with the token from `environ`.

    Unless `keep`, the login lives in a private configuration directory (the user's own
    settings and contexts, without their stored logins) that is removed afterwards, so the
    token is not left in ~/.docker/config.json or a credential helper."""
    user, token = credentials(environ)
    env = {k: v for k, v in environ.items() if k not in TOKEN_VARIABLES}  # stdin only
    with contextlib.ExitStack() as stack:
        if not keep:
            env["DOCKER_CONFIG"] = str(_private_config(stack, _docker_config(environ)))
        login = subprocess.run(login_argv(host, user), input=token, capture_output=True,
                               text=True, check=False, env=env)  # fmt: skip
        if login.returncode != 0:
            raise _login_refused(host, user, login.stderr)
        yield env


def _docker_config(environ: Mapping[str, str]) -> Path:
    chosen = environ.get("DOCKER_CONFIG")
    return Path(chosen) if chosen else Path(environ.get("HOME", Path.home())) / ".docker"


def _private_config(stack: contextlib.ExitStack, mine: Path) -> Path:
    """A 0700 copy of the user's docker configuration without stored logins; the current
    context and CLI plugins stay the user's, so the same engine is used."""
    private = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pgkura-docker-")))
    try:
        config = json.loads((mine / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    for key in ("auths", "credsStore", "credHelpers"):
        config.pop(key, None)
    (private / "config.json").write_text(json.dumps(config))
    for name in ("contexts", "cli-plugins"):
        if (mine / name).is_dir():
            (private / name).symlink_to(mine / name)
    return private


def _login_refused(host: str, user: str, stderr: str) -> DockerError:
    """One line: unreachable (a fact: no TCP connection) or refused, with what to check."""
    name, _, port = host.partition(":")
    try:
        socket.create_connection((name, int(port or 443)), timeout=10).close()
    except (OSError, ValueError):
        return DockerError(
            f"cannot reach the registry {host} (docker login failed: {_last_line(stderr)}) → "
            "check the --registry address and that this machine can reach it"
        )
    return DockerError(
        f"the registry {host} refused the login of {user} ({_last_line(stderr)}) → check "
        f"{' / '.join(USER_VARIABLES)} and that the token in {' / '.join(TOKEN_VARIABLES)} is "
        "valid and allowed to write packages"
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


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


def push(
    settings: Settings, registry: str, log: Callable[[str], None], *, keep_login: bool = False
) -> list[str]:
    """Tag, log in, push; each pushed ref with its digest ("REF sha256:…")."""
    require_docker()
    target = plan(settings.image, registry, git_commit(settings))
    run(["docker", "image", "inspect", target.source], what=f"image {target.source}")
    pushed = []
    with logged_in(target.host, os.environ, keep=keep_login) as env:
        for ref in target.refs:
            run(["docker", "tag", target.source, ref], what="docker tag")
            log(f"pushing {ref}")
            run(["docker", "push", ref], what=f"docker push {ref}", env=env, remedy=_REGISTRY)
            digest = run(
                ["docker", "image", "inspect", "--format", '{{join .RepoDigests "\\n"}}', ref],
                what="docker image inspect",
            )
            mine = [d for d in digest.split() if d.startswith(ref.rsplit(":", 1)[0] + "@")]
            pushed.append(f"{ref} {mine[0].rsplit('@', 1)[1]}" if mine else ref)
    return pushed


def pull(settings: Settings, log: Callable[[str], None]) -> None:
    """Fetch the published PGKURA_IMAGE: logged in for this pull only when registry
    credentials are in the environment, else as the docker CLI is (a public image, or the
    user's own `docker login`)."""
    image = settings.image
    log(f"pulling {image}")
    host = image.split("/", 1)[0]
    with contextlib.ExitStack() as stack:
        env = {k: v for k, v in os.environ.items() if k not in TOKEN_VARIABLES}
        if any(os.environ.get(v) for v in TOKEN_VARIABLES):
            env = stack.enter_context(logged_in(host, os.environ))
        run(["docker", "pull", "--quiet", image], what=f"docker pull {image}", env=env,
            remedy=_REGISTRY)  # fmt: skip
