"""What "the backups" are: file names, manifests, listing, `latest`, and retention.

Every other module asks this one. A backup is `<stem>_YYYYMMDD_HHMMSS[_N].sql.gz` (or
`.sql.zst`) with a pgkura manifest beside it (`….sql.gz.json`). The stem comes from the database
name, made safe for any file system: letters and digits of any script stay readable,
everything else (`/`, `..`, control characters, spaces, `%`) is percent-encoded, so no name can
leave the directory and different names never share a stem. The manifest, not the name, says
which database a file holds and what it is for: safety copies taken before a restore are never
`latest` unless asked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgkura import validation as v
from pgkura.errors import PgkuraError
from pgkura.retention import Policy, reasons_to_keep
from pgkura.units import age, size

MANIFEST_FORMAT = "pgkura-backup/1"
SUFFIXES = {"gzip": ".sql.gz", "zstd": ".sql.zst"}
SAFETY = "safety"  # the purpose of the copy a restore takes of what it replaces
ORDINARY = "backup"
_NAME = re.compile(r"^(?P<stem>.+)_(?P<stamp>\d{8}_\d{6})(?:_(?P<n>\d+))?\.sql\.(?:gz|zst)$")
_KEEP_AS_IS = set("-_")


class BackupNotFound(PgkuraError):
    """No backup matches what was asked for."""


def file_stem(dbname: str, mode: str = "full") -> str:
    """The readable, path-safe name stem of one database's backups of one kind."""
    out = []
    for i, ch in enumerate(dbname):
        if (ch.isalnum() and ch.isprintable()) or ch in _KEEP_AS_IS or (ch == "." and i > 0):
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    stem = "".join(out).replace("..", "%2E%2E")
    return f"{stem}_cluster" if mode == "cluster" else stem


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest beside `path`, or {} when there is none (or it is not readable JSON)."""
    try:
        data = json.loads(manifest_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _created_at(text: object) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when and when.tzinfo is None else when


@dataclass(frozen=True)
class Backup:
    """One backup file and what its manifest says of it."""

    path: Path
    manifest: dict[str, Any]

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.path)

    @property
    def ours(self) -> bool:
        return self.manifest.get("format") == MANIFEST_FORMAT

    @property
    def purpose(self) -> str:
        return str(self.manifest.get("purpose") or ORDINARY)

    @property
    def taken_at(self) -> datetime | None:
        """The (local) time in the file's name."""
        match = _NAME.match(self.path.name)
        return datetime.strptime(match["stamp"], "%Y%m%d_%H%M%S") if match else None

    def summary(self, now: datetime | None = None) -> str:
        """What a person deciding to restore it needs: its age, size and origin (the database
        and server it came from, and why it was taken), from its manifest where there is one."""
        created = _created_at(self.manifest.get("created_at"))
        now = now or datetime.now(UTC)
        if created is None:
            created = datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        parts = [f"taken {age(max(0.0, (now - created).total_seconds()))} ago",
                 size(self.path.stat().st_size)]  # fmt: skip
        if not self.ours:
            return ", ".join([*parts, "no pgkura manifest: origin unknown"])
        server = self.manifest.get("server_version")
        parts.append(f"of database {self.manifest.get('database', '?')}"
                     + (f" on PostgreSQL {server}" if server else ""))  # fmt: skip
        why = self.manifest.get("reason") or ""
        if self.purpose == SAFETY:
            parts.append(f"a safety copy{f' ({why})' if why else ''}")
        elif why:
            parts.append(str(why))
        return ", ".join(parts)

    def unread_problem(self) -> str | None:
        """What is wrong at a glance, without reading the file: no pgkura manifest, or a size
        on disk other than the one recorded when the dump was proven complete (its manifest
        is written only then). Reading the file (archive.verify) is the full check."""
        if not self.ours:
            return "no pgkura manifest"
        recorded, actual = self.manifest.get("size"), self.path.stat().st_size
        if recorded != actual:
            return f"{actual} bytes on disk, the manifest recorded {recorded}"
        return None

    @property
    def order(self) -> tuple[str, int, str]:
        """Oldest first: the time in the name, then the same-second counter."""
        match = _NAME.match(self.path.name)
        if not match:
            return ("", 0, self.path.name)
        return (match["stamp"], int(match["n"] or 1), self.path.name)


def own_backups(
    entries: list[Backup], dbname: str, mode: str = "full", purpose: str | None = ORDINARY
) -> list[Backup]:
    """Of `entries` (oldest first), this tool's backups of `dbname` in `mode`; `purpose=None`
    for all purposes. A name alone is not enough: the manifest must say so too."""
    stem = file_stem(dbname, mode)
    return [
        e
        for e in entries
        if e.ours
        and (m := _NAME.match(e.path.name)) is not None
        and m["stem"] == stem
        and e.manifest.get("database") == dbname
        and e.manifest.get("mode", "full") == mode
        and (purpose is None or e.purpose == purpose)
    ]


def plan_retention(
    entries: list[Backup], dbname: str, mode: str, policy: Policy
) -> list[tuple[Backup, list[str]]]:
    """Of `entries`, this tool's backups of `dbname` in `mode`, each with why `policy` keeps it
    (empty: it would go). Ordinary backups and safety copies are counted apart."""
    plan = []
    for purpose in (ORDINARY, SAFETY):
        own = [e for e in own_backups(entries, dbname, mode, purpose) if e.taken_at is not None]
        times = [e.taken_at for e in own if e.taken_at is not None]
        plan += list(zip(own, reasons_to_keep(times, policy), strict=True))
    return plan


def is_backup_name(name: str) -> bool:
    """Whether `name` has the shape of a pgkura backup file's name."""
    return _NAME.match(name) is not None


class BackupStore:
    """The backups in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def entries(self) -> list[Backup]:
        """Every `.sql.gz` / `.sql.zst` file in the directory (pgkura's or not), oldest first."""
        if not self.directory.is_dir():
            return []
        paths = [p for suffix in SUFFIXES.values() for p in self.directory.glob(f"*{suffix}")]
        found = [Backup(p, read_manifest(p)) for p in paths]
        return sorted(found, key=lambda e: e.order)

    def own(self, dbname: str, mode: str = "full", purpose: str | None = ORDINARY) -> list[Backup]:
        """This tool's backups of `dbname` in `mode`, oldest first; `purpose=None` for all."""
        return own_backups(self.entries(), dbname, mode, purpose)

    def latest(self, dbname: str, *, safety: bool = False) -> Path:
        """The newest full backup of `dbname` (`safety`: the newest copy a restore took)."""
        found = self.own(dbname, purpose=SAFETY if safety else ORDINARY)
        if not found:
            what = "safety copies (taken before restores)" if safety else "backups"
            raise BackupNotFound(
                f"no {what} of database {dbname} in {self.directory}\n→ `invoke db.backups` "
                "lists what is there; name a file instead of `latest`"
            )
        return found[-1].path

    def resolve(self, spec: str, dbname: str, *, safety: bool = False) -> Path:
        """A file argument: `latest` (see `latest`), or a path as given."""
        if spec == "latest":
            return self.latest(dbname, safety=safety)
        path = v.FILE_PATH.check(spec, name="FILE", where="the command line").resolve()
        if not path.is_file():
            raise BackupNotFound(f"{path} does not exist (or is not a file)")
        return path

    def new_path(
        self, dbname: str, mode: str, now: datetime | None = None, compression: str = "gzip"
    ) -> Path:
        """A fresh timestamped name for a backup of `dbname`, inside the directory; no two
        backups share a name apart from their suffix, so their order is never a tie."""
        stamp = (now or datetime.now()).strftime("%Y%m%d_%H%M%S")
        stem = file_stem(dbname, mode)
        n = 1
        while True:
            base = f"{stem}_{stamp}" + (f"_{n}" if n > 1 else "")
            taken = [self.directory / f"{base}{suffix}" for suffix in SUFFIXES.values()]
            if not any(p.exists() or manifest_path(p).exists() for p in taken):  # same second
                return self.directory / f"{base}{SUFFIXES[compression]}"
            n += 1

    def retention_plan(
        self, dbname: str, mode: str, policy: Policy
    ) -> list[tuple[Backup, list[str]]]:
        """This tool's backups of `dbname` in `mode`, oldest first, each with why `policy`
        keeps it (empty: it would go). Ordinary backups and safety copies are counted apart."""
        return plan_retention(self.entries(), dbname, mode, policy)

    def prune(self, dbname: str, mode: str, policy: Policy) -> list[Path]:
        """Delete what `policy` does not keep; what went. An inactive policy deletes nothing."""
        removed = []
        for entry, reasons in self.retention_plan(dbname, mode, policy):
            if not reasons:
                entry.path.unlink()
                manifest_path(entry.path).unlink(missing_ok=True)
                removed.append(entry.path)
        return removed
