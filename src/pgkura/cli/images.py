"""Tasks for the project's Docker image: build it, push it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.context import Context

from pgkura.cli.wiring import say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings


@task(
    name="build",
    help={"no-cache": "build every layer again", "pull": "pull a newer base image first"},
)
def docker_build(
    c: Context, settings: Settings, no_cache: bool = False, pull: bool = False
) -> None:
    """image: build PostgreSQL 18 + pgvector + pg_bigm

    Build the PostgreSQL 18 + pgvector + pg_bigm image (docker compose build); pg_bigm's source
    from PG_BIGM_SOURCE (a URL, or a local archive for hosts without access).

    Examples:
      invoke docker.build
      invoke docker.build --no-cache --pull
    """
    from pgkura.engines.chosen import engine_for
    from pgkura.engines.docker.engine import build

    engine_for(settings).docker_only("building an image")
    build(settings, no_cache=no_cache, pull=pull)


@task(
    name="push",
    help={
        "registry": "where to push, e.g. ghcr.io/OWNER/REPO (any registry)",
        "keep-login": "stay logged in afterwards (default: the login ends with the push)",
    },
)
def docker_push(c: Context, settings: Settings, registry: str, keep_login: bool = False) -> None:
    """image: push it to a registry

    Push the built image under its descriptive tag and sha-<commit> (token from env).

    Examples:
      invoke docker.push --registry ghcr.io/OWNER/REPO
    """
    from pgkura.engines.chosen import engine_for
    from pgkura.engines.docker.publish import push

    engine_for(settings).docker_only("pushing an image")
    for ref in push(settings, registry, say, keep_login=keep_login):
        print(f"pushed {ref}")
