"""Statement boundaries of migration files already checked, kept between runs.

Splitting and checking every file with PostgreSQL's parser is most of what a run with nothing
to do would cost (importing the parser alone takes longer than the database round trips). A
file is not parsed again while its checksum, the version table's name and pgkura's checking
code are unchanged, and it had no problem last time. The cache only saves time: missing,
unreadable or stale, it is rebuilt; unwritable, it is skipped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pgkura.cache import cache_dir
from pgkura.private_files import write_private

_CHECKING_CODE = ("files.py", "sql_rules.py", "sql_text.py", "parse_cache.py")
Slices = list[tuple[int, int]]


def _code_stamp() -> str:
    """Changes whenever the code that splits and checks files changes (an upgrade, an edit)."""
    here = Path(__file__).parent
    parts = [
        f"{n}:{(here / n).stat().st_size}:{(here / n).stat().st_mtime_ns}" for n in _CHECKING_CODE
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class ParseCache:
    """checksum -> statement slices, for one migrations directory and version table."""

    def __init__(self, directory: Path, context: str) -> None:
        key = hashlib.sha256(f"{directory.resolve()}\0{context}".encode()).hexdigest()[:32]
        self.path = cache_dir() / "parsed" / f"{key}.json"
        self.stamp = _code_stamp()
        self.known = self._load()
        self.seen: dict[str, Slices] = {}

    def _load(self) -> dict[str, Slices]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("stamp") != self.stamp:
            return {}
        files = data.get("files")
        return files if isinstance(files, dict) else {}

    def get(self, checksum: str) -> Slices | None:
        slices = self.known.get(checksum)
        if slices is not None:
            self.seen[checksum] = slices
        return slices

    def put(self, checksum: str, slices: Slices) -> None:
        self.seen[checksum] = slices

    def save(self) -> None:
        """Keep what this run saw (files gone from the directory drop out)."""
        if self.seen == self.known:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_private(self.path, json.dumps({"stamp": self.stamp, "files": self.seen}))
        except OSError:
            pass  # a read-only home, a full disk: the next run parses again
