"""A failed image build names the setting that fixes it, whichever task built: what BuildKit
really prints for a missing base image, a build network without a route and pg_bigm's source."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from .conftest import TARGET, Project, free_port

pytestmark = pytest.mark.e2e

needs_bigm = pytest.mark.skipif(TARGET != "full", reason="the runtime target builds no pg_bigm")


@pytest.fixture
def fresh(engine: None, tmp_path: Path) -> Iterator[Project]:
    """A project whose image is not built yet and that never gets a container."""
    proj = Project(tmp_path)
    proj.env["PGKURA_IMAGE"] = f"pgkura-postgres:e2e-unbuilt-{uuid.uuid4().hex[:8]}"
    yield proj
    gone = proj.invoke("db.down", "--volumes", "--yes", "--no-backup")
    assert gone.returncode == 0, gone.stderr


def _failed(proj: Project, *args: str, **env: str) -> str:
    result = proj.invoke(*args, **env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "task", [("docker.build",), ("db.up", "--build"), ("db.up",)], ids=" ".join
)
def test_a_missing_base_image_is_named(fresh, task):
    """`db.up` alone builds too: Compose builds an image that is missing."""
    err = _failed(fresh, *task, PG_BASE_IMAGE="local/pgkura-no-such-base:1")
    assert "local/pgkura-no-such-base:1 (PG_BASE_IMAGE)" in err
    assert "PGKURA_BUILD_TARGET" in err
    assert "failed to solve" in err  # BuildKit's own account still reaches the person


def test_a_build_network_without_a_route_names_pgkura_build_network(fresh):
    """--no-cache: cached layers would not need the network at all."""
    err = _failed(fresh, "docker.build", "--no-cache", PGKURA_BUILD_NETWORK="none")
    assert "apt-get found no route" in err
    assert "(none, PGKURA_BUILD_NETWORK)" in err
    assert "set PGKURA_BUILD_NETWORK=host" in err


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on the loopback serving `tmp_path/site` (a pg_bigm mirror)."""
    site = tmp_path / "site"
    site.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()
    server.server_close()


@needs_bigm
def test_an_unreachable_pg_bigm_source_is_named(fresh):
    source = f"http://127.0.0.1:{free_port()}/pg_bigm.tar.gz"  # nothing listens there
    err = _failed(
        fresh, "docker.build", PG_BIGM_SOURCE=source, PG_BIGM_SHA256="", PGKURA_BUILD_NETWORK="host"
    )
    assert f"pg_bigm's source {source} (PG_BIGM_SOURCE) could not be downloaded" in err
    assert "PGKURA_BUILD_TARGET=runtime" in err


@needs_bigm
def test_a_downloaded_pg_bigm_archive_with_another_sha256_is_named(fresh, web):
    url, site = web
    (site / "pg_bigm.tar.gz").write_bytes(b"not the release archive")
    wrong = "0" * 64
    err = _failed(
        fresh,
        "db.up",
        "--build",
        PG_BIGM_SOURCE=f"{url}/pg_bigm.tar.gz",
        PG_BIGM_SHA256=wrong,
        PGKURA_BUILD_NETWORK="host",  # the build reaches the loopback server
    )
    assert f"does not have the SHA-256 given in PG_BIGM_SHA256 ({wrong})" in err
