"""Errors a person can act on: each message says what went wrong and what to do next."""


class PgkuraError(Exception):
    """An expected failure; tasks print its message and exit non-zero, without a traceback."""

    exit_code = 1


class ConfigError(PgkuraError):
    """A setting is missing or invalid; raised before anything runs."""


class ConnectError(PgkuraError):
    """The server cannot be reached or refuses us."""


class MigrationError(PgkuraError):
    """A migration file is malformed, out of line with the database, or failed to apply."""


class LockTimeoutError(MigrationError):
    """Another runner holds the migration lock for longer than we are willing to wait."""


class PendingMigrationsError(MigrationError):
    """`status --check` found work to do; a CI gate exits non-zero on it."""

    exit_code = 3


class ConfirmationRequired(PgkuraError):
    """A destructive step was not confirmed."""


class RestoreError(PgkuraError):
    """The restore did not commit; the database is as it was."""
