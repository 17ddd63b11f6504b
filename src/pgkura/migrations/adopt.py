"""`db.adopt --from golang-migrate|dbmate|flyway`: take over another tool's migration history.

It reads the other tool's version table (left exactly as it is) and its files, converts the
files pgkura cannot read as they are (dbmate's up/down sections, Flyway's V/U names), checks the
result as `db.migrate` would, and records the versions the other tool applied in pgkura's own
table, with their checksums, in one transaction. A dry run (the default) shows all of it first.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg import sql

from pgkura.config.settings import Settings
from pgkura.connect.connection import connect
from pgkura.engines.readiness import ready
from pgkura.errors import ConfigError, MigrationError
from pgkura.migrations.files import Migration, MigrationProblems, discover, normalize
from pgkura.migrations.lock import runner_lock
from pgkura.migrations.version_table import KNOWN_TABLES, VersionTable, VersionTableName, looks_like

Log = Callable[[str], None]
DEFAULT_TABLES = {
    "golang-migrate": "schema_migrations",
    "dbmate": "schema_migrations",
    "flyway": "flyway_schema_history",
}
TOOLS = tuple(DEFAULT_TABLES)
_DBMATE_MARKER = re.compile(r"^--\s*migrate:(?P<section>up|down)\b(?P<options>.*)$", re.MULTILINE)
_FLYWAY_FILE = re.compile(
    r"^(?P<kind>[VU])(?P<version>[0-9]+(?:[._][0-9]+)*)__(?P<name>.+)\.sql$", re.IGNORECASE
)
_FLYWAY_PLACEHOLDER = re.compile(r"\$\{[A-Za-z0-9_.:-]+\}")


@dataclass(frozen=True)
class Conversion:
    """One file of the other tool's layout and the pgkura files that replace it."""

    source: Path
    files: dict[str, str]  # file name -> text


@dataclass(frozen=True)
class History:
    """What the other tool says was applied: version (in pgkura's numbering) -> how."""

    applied: dict[int, str]
    summary: str


@dataclass
class Adoption:
    tool: str
    source: str  # schema.table of the other tool
    history: History
    conversions: list[Conversion] = field(default_factory=list)
    record: list[Migration] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)

    def how(self, m: Migration) -> str:
        return self.history.applied[m.version]


def plan(settings: Settings, tool: str, source_table: str | None = None) -> Adoption:
    """Everything adoption would do, checked, without writing anything."""
    if tool not in TOOLS:
        raise ConfigError(f"--from {tool!r}: expected one of {', '.join(TOOLS)}")
    source = VersionTable(settings.migrations_schema, source_table or DEFAULT_TABLES[tool])
    ours = VersionTable(settings.migrations_schema, settings.migrations_table)
    if (source.schema, source.table) == (ours.schema, ours.table):
        raise ConfigError(
            f"pgkura's version table would be {ours}, which is {tool}'s own table: set "
            "PGKURA_MIGRATIONS_TABLE to another name (e.g. PGKURA_MIGRATIONS_TABLE="
            "pgkura_migrations in .env) and adopt again; the two then live side by side"
        )
    files, conversions, numbering = _convert(tool, settings.migrations_dir)
    migrations = _check_layout(settings, files, conversions)
    ready(settings)
    with connect(settings.target, purpose="adopt") as conn:
        _require_table(conn, source, tool)
        if ours.exists(conn) and ours.rows(conn):
            raise MigrationError(
                f"{ours} already records migrations: pgkura manages this database already; "
                "adopting is for a database that another tool migrated"
            )
        history = _HISTORIES[tool](conn, source, numbering, {m.version for m in migrations})
    adoption = Adoption(tool, str(source), history, conversions)
    by_version = {m.version: m for m in migrations}
    orphans = sorted(set(history.applied) - set(by_version))
    if orphans:
        raise MigrationError(
            f"{tool} recorded version(s) {', '.join(map(str, orphans))} as applied, but no "
            f"migration file has that number in {settings.migrations_dir}.\n→ restore the "
            "files (git history), then adopt again"
        )
    adoption.record = [m for m in migrations if m.version in history.applied]
    adoption.pending = [m for m in migrations if m.version not in history.applied]
    return adoption


def apply(settings: Settings, adoption: Adoption, log: Log) -> Path | None:
    """Write the converted files (the originals are moved beside the directory, not deleted)
    and record the versions in one transaction; the originals' new directory, if any."""
    kept = (
        _write_conversions(settings.migrations_dir, adoption, log) if adoption.conversions else None
    )
    table = VersionTable(settings.migrations_schema, settings.migrations_table)
    name = VersionTableName(table.schema, table.table)
    written = {m.version: m for m in discover(settings.migrations_dir, name)}
    if any(written[m.version].up.checksum != m.up.checksum for m in adoption.record):
        raise MigrationError("the migration files changed while adopting; nothing was recorded")
    with (
        runner_lock(settings.target, str(table), settings.runner_lock_wait_ms, log),
        connect(settings.target, purpose="adopt") as conn,
    ):
        table.ensure(conn)
        with conn.transaction():
            if table.rows(conn):
                raise MigrationError(f"{table} gained rows meanwhile; nothing was recorded")
            for m in adoption.record:
                table.record(conn, m.version, m.name, m.up.checksum, 0, how=adoption.how(m))
    return kept


# -- the other tools' tables -------------------------------------------------------------------


def _require_table(conn: psycopg.Connection, table: VersionTable, tool: str) -> None:
    columns = table.columns(conn)
    if not columns:
        raise MigrationError(
            f"{table} does not exist, so {tool} never migrated this database (or uses another "
            "table: name it with --source-table)"
        )
    if columns != KNOWN_TABLES[tool]:
        raise MigrationError(
            f"{table} is not {tool}'s version table: its columns ({', '.join(sorted(columns))}) "
            f"look like {looks_like(columns)}"
        )


def _golang_migrate(
    conn: psycopg.Connection, table: VersionTable, _numbering: dict[str, int], versions: set[int]
) -> History:
    """golang-migrate keeps one row: the newest version applied, and whether it failed."""
    row = conn.execute(
        sql.SQL("SELECT version, dirty FROM {} LIMIT 1").format(table.ident)
    ).fetchone()
    if row is None:
        return History({}, "no version recorded (nothing applied)")
    version, dirty = int(row[0]), bool(row[1])
    if dirty:
        raise MigrationError(
            f"golang-migrate marked version {version} dirty in {table}: that migration failed "
            "half-way, so the database may hold part of it.\n→ look at what its up file does, "
            f"finish or undo it by hand, then `migrate force {version}` (if it is now fully "
            f"applied) or `migrate force {version - 1}` (if undone), and adopt again"
        )
    return History({v: "applied" for v in versions if v <= version}, f"version {version}, clean")


def _dbmate(
    conn: psycopg.Connection, table: VersionTable, _numbering: dict[str, int], _versions: set[int]
) -> History:
    """dbmate keeps a row per applied version."""
    cur = conn.execute(sql.SQL("SELECT version FROM {}").format(table.ident))
    applied = {}
    for (text,) in cur:
        if not str(text).isdigit():
            raise MigrationError(f"{table} holds version {text!r}, which is not a number")
        applied[int(text)] = "applied"
    return History(applied, f"{len(applied)} version(s) applied")


def _flyway(
    conn: psycopg.Connection, table: VersionTable, numbering: dict[str, int], _versions: set[int]
) -> History:
    """Flyway keeps a row per event: replayed in order (applied, undone, baseline)."""
    cur = conn.execute(
        sql.SQL("SELECT version, type, script, success FROM {} ORDER BY installed_rank").format(
            table.ident
        )
    )
    applied: dict[int, str] = {}
    baseline: str | None = None
    for version, kind, script, success in cur:
        if not success:
            raise MigrationError(
                f"Flyway recorded a failed migration in {table}: {script} (version {version}).\n"
                "→ fix the database by hand, run `flyway repair`, and adopt again"
            )
        if version is None or kind in ("SCHEMA", "DELETE"):
            continue  # repeatables, schema creation, rows removed by `flyway repair`
        if kind == "BASELINE":
            baseline = version
            continue
        number = _flyway_number(numbering, version, script)
        if kind.startswith("UNDO"):
            applied.pop(number, None)
        else:
            applied[number] = "applied"
    if baseline is not None:
        below = _flyway_key(baseline)
        for text, number in numbering.items():
            if _flyway_key(text) <= below:
                applied.setdefault(number, "baseline")
    ran = sum(1 for how in applied.values() if how == "applied")
    summary = f"{ran} version(s) applied" + (f", baseline {baseline}" if baseline else "")
    return History(applied, summary)


def _flyway_number(numbering: dict[str, int], version: str, script: str) -> int:
    key = _flyway_key(version)
    for text, number in numbering.items():
        if _flyway_key(text) == key:
            return number
    raise MigrationError(
        f"Flyway applied {script} (version {version}), but no V file has that version.\n→ "
        "restore the file (git history), then adopt again"
    )


def _flyway_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.split(r"[._]", version))


_HISTORIES = {"golang-migrate": _golang_migrate, "dbmate": _dbmate, "flyway": _flyway}


# -- the files ---------------------------------------------------------------------------------


def _convert(tool: str, directory: Path) -> tuple[list[Path], list[Conversion], dict[str, int]]:
    """Files kept as they are, conversions, and (Flyway) its versions -> pgkura numbers."""
    if not directory.is_dir():
        raise MigrationError(
            f"migrations directory {directory} does not exist; set PGKURA_MIGRATIONS_DIR to "
            f"the {tool} project's migrations"
        )
    paths = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    if tool == "golang-migrate":
        return paths, [], {}
    problems: list[str] = []
    if tool == "dbmate":
        conversions = [c for p in paths if (c := _from_dbmate(p, problems))]
        numbering: dict[str, int] = {}
    else:
        conversions, numbering = _from_flyway(paths, problems)
    if problems:
        raise MigrationProblems(directory, problems)
    converted = {c.source for c in conversions}
    return [p for p in paths if p not in converted], conversions, numbering


def _from_dbmate(path: Path, problems: list[str]) -> Conversion | None:
    if path.suffix != ".sql":
        return None
    text = normalize(path.read_text(encoding="utf-8", errors="replace"))
    markers = list(_DBMATE_MARKER.finditer(text))
    sections = [m["section"] for m in markers]
    if sections not in (["up"], ["up", "down"]):
        problems.append(
            f"{path.name}: expected a '-- migrate:up' section and at most one '-- migrate:down' "
            f"after it (dbmate's layout); found {sections or 'none'}"
        )
        return None
    up_end = markers[1].start() if len(markers) > 1 else len(text)
    directive = "-- pgkura:no-transaction\n" if "transaction:false" in markers[0]["options"] else ""
    header = f"{directive}-- converted from dbmate's {path.name} by `invoke db.adopt`\n"
    files = {path.name: header + text[markers[0].end() : up_end].strip("\n") + "\n"}
    if len(markers) > 1:
        down = text[markers[1].end() :].strip("\n")
        down_directive = (
            "-- pgkura:no-transaction\n" if "transaction:false" in markers[1]["options"] else ""
        )
        if _has_sql(down):  # an empty down section: no down file, so rollback refuses
            files[path.name.removesuffix(".sql") + ".down.sql"] = (
                f"{down_directive}-- converted from dbmate's {path.name} by `invoke db.adopt`\n"
                + down
                + "\n"
            )
    return Conversion(path, files)


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.split("\n"))


def _from_flyway(paths: list[Path], problems: list[str]) -> tuple[list[Conversion], dict[str, int]]:
    found = []
    for path in paths:
        match = _FLYWAY_FILE.match(path.name)
        if path.name.upper().startswith("R__"):
            problems.append(
                f"{path.name}: a Flyway repeatable migration; pgkura has none. Fold it into a "
                "numbered migration (or run it yourself after migrating), and move it out of "
                "the directory"
            )
        elif match is None:
            if path.suffix.lower() == ".sql":
                problems.append(
                    f"{path.name}: not a Flyway V or U migration (a callback?); move it out of "
                    "the directory"
                )
        elif _FLYWAY_PLACEHOLDER.search(path.read_text(encoding="utf-8", errors="replace")):
            problems.append(
                f"{path.name}: uses Flyway placeholders (${{...}}), which pgkura does not "
                "substitute; write the values in"
            )
        else:
            found.append((path, match))
    versions = sorted({m["version"] for _, m in found}, key=_flyway_key)
    if all(v.isdigit() for v in versions):
        numbering = {v: int(v) for v in versions}
    else:  # 1.1, 2_1 ...: numbered in Flyway's order
        numbering = {v: n for n, v in enumerate(versions, start=1)}
    width = max((len(str(n)) for n in numbering.values()), default=1)
    conversions = []
    for path, match in found:
        number = f"{numbering[match['version']]:0{width}d}"
        down = ".down" if match["kind"].upper() == "U" else ""
        text = normalize(path.read_text(encoding="utf-8", errors="replace"))
        header = f"-- converted from Flyway's {path.name} by `invoke db.adopt`\n"
        conversions.append(Conversion(path, {f"{number}_{match['name']}{down}.sql": header + text}))
    return conversions, numbering


def _check_layout(
    settings: Settings, files: list[Path], conversions: list[Conversion]
) -> list[Migration]:
    """The directory as it will be after converting, checked exactly as `db.migrate` checks
    it (in a scratch copy, so nothing is written yet)."""
    name = VersionTableName(settings.migrations_schema, settings.migrations_table)
    with tempfile.TemporaryDirectory(prefix="pgkura-adopt-") as tmp:
        scratch = Path(tmp)
        for path in files:
            shutil.copy2(path, scratch / path.name)
        for conversion in conversions:
            for file_name, text in conversion.files.items():
                (scratch / file_name).write_text(text, encoding="utf-8")
        try:
            migrations = discover(scratch, name)
        except MigrationProblems as exc:
            raise MigrationProblems(settings.migrations_dir, exc.problems) from None
    # the checksums are those of the files as they will be in the real directory
    return [_relocated(m, settings.migrations_dir) for m in migrations]


def _relocated(m: Migration, directory: Path) -> Migration:
    up = replace(m.up, path=directory / m.up.path.name)
    down = replace(m.down, path=directory / m.down.path.name) if m.down else None
    return replace(m, up=up, down=down)


def _write_conversions(directory: Path, adoption: Adoption, log: Log) -> Path:
    """Move the converted originals to `<dir>.<tool>-originals/` beside the directory, then
    write the new files."""
    kept = directory.parent / f"{directory.name}.{adoption.tool}-originals"
    if kept.exists():
        raise MigrationError(f"{kept} exists already; move it away, then adopt again")
    kept.mkdir()
    for conversion in adoption.conversions:
        shutil.move(str(conversion.source), kept / conversion.source.name)
    for conversion in adoption.conversions:
        for file_name, text in conversion.files.items():
            with (directory / file_name).open("x", encoding="utf-8") as out:
                out.write(text)
    log(f"moved {len(adoption.conversions)} original file(s) to {kept}")
    return kept
