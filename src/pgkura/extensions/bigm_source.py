"""Where pg_bigm's source comes from (PG_BIGM_SOURCE): the release archive's URL, or a copy of
that archive on this machine, for hosts that cannot download from GitHub (air-gapped servers,
corporate networks, CI here). The image build and the throwaway server's build both read it.

A local archive reaches the image through the build context: for the build, a copy is placed
in docker/postgres/pg_bigm-source/ and the Dockerfile is given its file name. Named build
contexts would avoid the copy, but Docker engines before 23 cannot use them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pgkura.checksums import sha256_of
from pgkura.config.bigm_source import (
    VERSION,
    BigmSource,
)
from pgkura.errors import ConfigError

STAGING_DIR = Path("docker") / "postgres" / "pg_bigm-source"  # inside the build context


def verified(path: Path, expected: str | None, *, what: str) -> Path:
    """`path`, once it is a readable file with the expected SHA-256 (when one is set)."""
    if not path.is_file():
        raise ConfigError(
            f"{what} {path} does not exist or is not a file.\n→ set PG_BIGM_SOURCE to the "
            f"pg_bigm release archive (pg_bigm-{VERSION}.tar.gz) or to its URL"
        )
    if expected is not None:
        actual = sha256_of(path)
        if actual != expected:
            raise ConfigError(
                f"{what} {path} has SHA-256 {actual}, but PG_BIGM_SHA256 is {expected}: "
                "a different or damaged archive. Nothing was built.\n→ fetch the archive "
                "again, or correct PG_BIGM_SHA256"
            )
    return path


@contextmanager
def staged(source: BigmSource, root: Path) -> Iterator[None]:
    """For the length of a build: a local archive inside the build context, under the name
    `source.build_arg`. A copy made here is removed afterwards; a file already there with the
    same bytes is used and left alone; a different one of that name is refused, not replaced."""
    if source.path is None:
        yield
        return
    archive = verified(source.path, source.sha256, what="PG_BIGM_SOURCE")
    target = root / STAGING_DIR / archive.name
    if target.exists():
        if sha256_of(target) != sha256_of(archive):
            raise ConfigError(
                f"{target} differs from PG_BIGM_SOURCE ({archive}) but has its name; pgkura "
                "will not overwrite it.\n→ remove or rename it, then build again"
            )
        yield
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archive, target)
    try:
        yield
    finally:
        target.unlink(missing_ok=True)
