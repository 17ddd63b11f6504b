"""Files against version rows: pending, changed, missing and out-of-order migrations."""

from __future__ import annotations

from dataclasses import dataclass

from pgkura.errors import MigrationError
from pgkura.migrations.files import Migration, SqlFile
from pgkura.migrations.version_table import AppliedRow


@dataclass(frozen=True)
class StatusEntry:
    """One line of `db.status`: a version with its file, its row, or both."""

    version: int
    name: str
    state: str  # applied | baseline | pending | changed | missing | out-of-order
    row: AppliedRow | None
    migration: Migration | None


@dataclass(frozen=True)
class Plan:
    migrations: list[Migration]
    applied: dict[int, AppliedRow]

    @property
    def by_version(self) -> dict[int, Migration]:
        return {m.version: m for m in self.migrations}

    @property
    def newest_applied(self) -> int:
        return max(self.applied, default=0)

    @property
    def pending(self) -> list[Migration]:
        return [m for m in self.migrations if m.version not in self.applied]

    @property
    def changed(self) -> list[tuple[Migration, AppliedRow]]:
        return [
            (m, self.applied[m.version])
            for m in self.migrations
            if m.version in self.applied and self.applied[m.version].checksum != m.up.checksum
        ]

    @property
    def missing(self) -> list[AppliedRow]:
        files = self.by_version
        return [row for v, row in sorted(self.applied.items()) if v not in files]

    @property
    def out_of_order(self) -> list[Migration]:
        return [m for m in self.pending if m.version < self.newest_applied]

    def entries(self) -> list[StatusEntry]:
        files = self.by_version
        changed = {m.version for m, _ in self.changed}
        late = {m.version for m in self.out_of_order}
        out = []
        for version in sorted(set(files) | set(self.applied)):
            m, row = files.get(version), self.applied.get(version)
            if m is None:
                state = "missing"
            elif row is None:
                state = "out-of-order" if version in late else "pending"
            elif version in changed:
                state = "changed"
            else:
                state = "baseline" if row.how == "baseline" else "applied"
            name = m.name if m else row.name if row else ""
            out.append(StatusEntry(version, name, state, row, m))
        return out

    def check_integrity(self, *, allow_missing: bool, allow_out_of_order: bool) -> None:
        """Refuse to go on over an edited, vanished or late file, each with its remedy."""
        problems = []
        for m, row in self.changed:
            problems.append(
                f"{m.up.path.name} changed after it was applied on {row.applied_at:%Y-%m-%d %H:%M} "
                f"(checksum {row.checksum[:12]} → {m.up.checksum[:12]}). Applied migrations are "
                "history: put the change in a new migration (`invoke db.new NAME`), or, if the "
                "edit was deliberate and the database already matches, `invoke db.repair`."
            )
        if not allow_missing:
            problems += [
                f"version {row.version} ({row.name}) is recorded as applied but its file is "
                "missing from the migrations directory. Restore the file (git checkout), or pass "
                "--allow-missing if it was removed on purpose."
                for row in self.missing
            ]
        if not allow_out_of_order:
            problems += [
                f"{m.up.path.name} is pending but numbered below the newest applied version "
                f"{self.newest_applied}; it would silently run out of order. Renumber it above "
                f"{self.newest_applied} (`invoke db.new` picks the next number), or pass "
                "--allow-out-of-order if it is independent of the later ones."
                for m in self.out_of_order
            ]
        if problems:
            raise MigrationError("refusing to migrate:\n" + "\n".join(f"  - {p}" for p in problems))

    def to_apply(self, to: int | None) -> list[Migration]:
        if to is not None and to not in self.by_version and to not in self.applied:
            raise MigrationError(f"--to {to}: no migration has that number")
        return [m for m in self.pending if to is None or m.version <= to]

    def to_roll_back(self, steps: int | None, to: int | None) -> list[tuple[Migration, SqlFile]]:
        """Applied migrations to undo, newest first; refuses before anything runs if a down
        file is missing."""
        if steps is not None and to is not None:
            raise MigrationError("give --steps or --to, not both")
        applied = sorted(self.applied, reverse=True)
        if to is not None:
            if to != 0 and to not in self.applied:
                raise MigrationError(f"--to {to}: that version is not applied")
            versions = [v for v in applied if v > to]
        else:
            count = 1 if steps is None else steps
            if count < 1:
                raise MigrationError("--steps must be at least 1")
            versions = applied[:count]
        files = self.by_version
        chosen = []
        for v in versions:
            m = files.get(v)
            if m is None:
                raise MigrationError(
                    f"cannot roll back version {v} ({self.applied[v].name}): its file is "
                    "missing; restore it first"
                )
            if m.down is None:
                raise MigrationError(
                    f"cannot roll back {m.label}: it has no down file "
                    f"({m.label}.down.sql); nothing was rolled back. Write one, or undo it "
                    "with a new forward migration."
                )
            chosen.append((m, m.down))
        return chosen
