"""What PG_BIGM_SOURCE and PG_BIGM_SHA256 mean: pg_bigm's release archive by URL, or a copy of
it on this machine, and the SHA-256 it must have; staging it for a build is
extensions.bigm_source's."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pgkura.validation import is_http_url, project_path, redact_url

VERSION = "1.2-20250903"


DEFAULT_URL = f"https://github.com/pgbigm/pg_bigm/archive/refs/tags/v{VERSION}.tar.gz"


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class BigmSource:
    """A URL to download, or a local archive (exactly one), and the SHA-256 it must have."""

    url: str | None = field(default=None, repr=False)  # a private mirror's may hold a token
    path: Path | None = None
    sha256: str | None = None

    @property
    def build_arg(self) -> str:
        """The Dockerfile's PG_BIGM_SOURCE: the URL, or the staged archive's file name."""
        if self.path is not None:
            return self.path.name
        return self.url or DEFAULT_URL

    def describe(self) -> str:
        """Where it comes from, as it may be shown (a URL's password and query hidden)."""
        return str(self.path) if self.path is not None else redact_url(self.url or DEFAULT_URL)


def parse_location(text: str, root: Path) -> BigmSource:
    """An http(s) URL, or a path (relative to `root`); anything else with a scheme is refused."""
    text = text.strip()
    if is_http_url(text):
        return BigmSource(url=text)
    if "://" in text or not text:
        raise ValueError("only http:// and https:// URLs can be downloaded")
    return BigmSource(path=project_path(text, root))


def parse_sha256(text: str) -> str | None:
    value = text.strip().lower()
    if value and not _SHA256.match(value):
        raise ValueError("64 hexadecimal digits, as `sha256sum` prints")
    return value or None
