"""Publishing the image to a real registry and running it from there.

The registry is Debian's `docker-registry` (the Distribution project's registry 2.8) on
127.0.0.1 with a password (htpasswd): Docker trusts a loopback registry without TLS, and the
login is real. A second project, with nothing but the Compose files, pgkura's tasks and its
init.sql (no build context), runs what was pushed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import ROOT, tracked_files, wait_for_port

from .conftest import TARGET, Project, free_port

REGISTRY = shutil.which("docker-registry")


@dataclass(frozen=True)
class Registry:
    host: str
    user: str
    password: str


@pytest.fixture(scope="module")
def registry(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if REGISTRY is None:
        why = "no docker-registry here (Debian's package docker-registry provides it)"
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
    base = tmp_path_factory.mktemp("registry")
    password = "reg-" + secrets.token_hex(12)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    (base / "htpasswd").write_text(f"pusher:{hashed}\n")
    port = free_port()
    (base / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {base / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}', secret: {secrets.token_hex(16)}}}\n"
        f"auth: {{htpasswd: {{realm: pgkura-e2e, path: {base / 'htpasswd'}}}}}\n"
    )
    log = base / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([REGISTRY, "serve", str(base / "config.yml")],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for_port(port, proc, log, "the registry")
        yield Registry(f"127.0.0.1:{port}", "pusher", password)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class _ArgvWatch:
    """Every process's command line, read while a command runs: a token on a command line
    is visible to every account on the machine."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    argv = cmdline.read_bytes()
                except OSError:
                    continue
                if self.secret in argv:
                    self.seen.append(argv.replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(0.02)

    def __enter__(self) -> _ArgvWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def built(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Project:
    proj = Project(tmp_path_factory.mktemp("publish"))
    result = proj.invoke("docker.build")
    assert result.returncode == 0, result.stderr
    return proj


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def test_push_to_a_registry_then_run_the_published_image_from_a_project_without_a_build_context(
    built: Project, registry: Registry, tmp_path: Path
):
    config = tmp_path / "docker-config"  # the user's own docker configuration
    config.mkdir()
    env = {"DOCKER_CONFIG": str(config), "PGKURA_REGISTRY_USER": registry.user,
           "PGKURA_REGISTRY_TOKEN": registry.password}  # fmt: skip
    where = f"{registry.host}/team/app"
    with _ArgvWatch(registry.password) as watch:
        pushed = built.invoke("docker.push", "--registry", where, **env)
    assert pushed.returncode == 0, pushed.stderr
    assert registry.password not in pushed.stdout + pushed.stderr
    assert watch.seen == []  # never on a command line
    # the login ended with the push: nothing of it left in the user's docker configuration
    left = [p for p in config.rglob("*") if p.is_file() and registry.password in p.read_text()]
    assert left == []
    stored = config / "config.json"
    assert not stored.exists() or registry.host not in stored.read_text()
    lines = [line.split() for line in pushed.stdout.splitlines() if line.startswith("pushed ")]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    refs = [f"{where}/pgkura-postgres:e2e", f"{where}/pgkura-postgres:sha-{commit}"]
    assert [line[1] for line in lines] == refs
    digests = {line[2] for line in lines}
    assert len(digests) == 1
    assert digests.pop().startswith("sha256:")

    # Only the registry holds it now: the second project must pull it.
    _docker("rmi", *refs)
    deploy = tmp_path / "deploy"  # what a server gets: the Compose files and pgkura's tasks
    deploy.mkdir()
    for path in tracked_files():
        if path.parent == ROOT and (
            path.name.startswith("docker-compose") or path.name == "tasks.py"
        ):
            shutil.copy(path, deploy / path.name)
    assert not (deploy / "docker").exists()
    server = Project(tmp_path / "server")
    server_env = {**server.env, **env, "PGKURA_IMAGE": refs[0],
                  "PGKURA_EXTENSIONS": "vector,pg_bigm" if TARGET == "full" else "vector",
                  "PGKURA_INIT_SQL": str(server.schema / "init.sql")}  # fmt: skip

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", "--search-root", str(deploy), *args],
            env={**os.environ, **server_env}, cwd=deploy, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=600, check=False,
        )  # fmt: skip
        assert registry.password not in result.stdout + result.stderr
        assert server.env["POSTGRES_PASSWORD"] not in result.stdout + result.stderr
        return result

    try:
        up = invoke("db.up")
        assert up.returncode == 0, up.stderr
        assert f"pulling {refs[0]}" in up.stderr
        extensions = invoke("db.extensions", "--ensure")  # the fixtures create vector only
        assert extensions.returncode == 0, extensions.stdout + extensions.stderr
        if TARGET == "full":
            assert "pg_bigm" in extensions.stdout
        assert "vector" in extensions.stdout
        running = _docker("inspect", "-f", "{{.Image}}", server.container).strip()
        assert running == _docker("image", "inspect", "-f", "{{.Id}}", refs[0]).strip()
        assert not stored.exists() or registry.password not in stored.read_text()
    finally:
        invoke("db.down", "--volumes", "--yes", "--no-backup")
        subprocess.run(["docker", "rmi", refs[0]], capture_output=True, check=False)


def test_a_wrong_password_and_an_unreachable_registry_fail_in_one_line(
    built: Project, registry: Registry, tmp_path: Path
):
    env = {"DOCKER_CONFIG": str(tmp_path), "PGKURA_REGISTRY_USER": registry.user}
    wrong = built.invoke("docker.push", "--registry", f"{registry.host}/team/app", **env,
                         PGKURA_REGISTRY_TOKEN="not-the-password")  # fmt: skip
    assert wrong.returncode == 1
    assert wrong.stderr.strip().count("\n") == 0, wrong.stderr
    assert f"the registry {registry.host} refused the login of pusher" in wrong.stderr
    assert "PGKURA_REGISTRY_TOKEN" in wrong.stderr
    assert "not-the-password" not in wrong.stderr + wrong.stdout
    closed = f"127.0.0.1:{free_port()}"
    gone = built.invoke("docker.push", "--registry", f"{closed}/team/app", **env,
                        PGKURA_REGISTRY_TOKEN=registry.password)  # fmt: skip
    assert gone.returncode == 1
    assert gone.stderr.strip().count("\n") == 0, gone.stderr
    assert f"cannot reach the registry {closed}" in gone.stderr
    assert "Traceback" not in wrong.stderr + gone.stderr
