"""What every task shares: the `task` decorator (settings in, errors out) and the small helpers
for saying what happens. Imports of the library happen inside functions, so `invoke --list`
stays fast."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task
from invoke.tasks import task as _invoke_task

if TYPE_CHECKING:
    import psycopg

    from pgkura.backups.consent import Consent
    from pgkura.config.settings import Settings
    from pgkura.progress import Reporter


def project_root(c: Context) -> Path:
    """The directory of the project's tasks.py (it puts itself in the configuration)."""
    return Path(c.config.pgkura.root)


Body = Callable[..., Any]


@overload
def task(body: Body, /) -> Task[Body]: ...
@overload
def task(*, auto_shortflags: bool = False, **kwargs: Any) -> Callable[[Body], Task[Body]]: ...
def task(
    body: Body | None = None, /, *, auto_shortflags: bool = False, **kwargs: Any
) -> Task[Body] | Callable[[Body], Task[Body]]:
    """invoke's `@task` for a body `(c, settings, ...flags)`: the settings are loaded for it, and
    expected failures end with one clear message and a non-zero exit, not a traceback.

    invoke would give every flag a one-letter alias (-f for --force, -y for --yes): too easy to
    type by accident on tasks that delete or replace data, so no task gets automatic ones
    unless it asks (`auto_shortflags=True`: logs, psql, as docker and psql spell them)."""
    if body is not None:
        return task()(body)

    def decorate(body: Body) -> Task[Body]:
        @functools.wraps(body)
        def run(c: Context, *flags: Any, **named: Any) -> Any:
            root = project_root(c)
            with _errors(root):
                return body(c, _settings(root), *flags, **named)

        signature = inspect.signature(body)
        context, _, *rest = signature.parameters.values()  # (c, settings, *flags)
        run.__signature__ = signature.replace(parameters=[context, *rest])  # type: ignore[attr-defined]
        made: Task[Body] = _invoke_task(auto_shortflags=auto_shortflags, **kwargs)(run)
        return made

    return decorate


@contextmanager
def _errors(root: Path) -> Iterator[None]:
    """Expected failures end with one clear message and a non-zero exit, not a traceback;
    the outcome is also written for the scheduler (run_result) when it asks."""
    from pgkura.errors import PgkuraError
    from pgkura.schedule import result as run_result

    try:
        try:
            yield
        except PgkuraError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except Exception as exc:
            # psycopg is looked up, not imported: a task that never connected (a backup through
            # `docker exec`) cannot have a database error and should not pay for the import
            psycopg = sys.modules.get("psycopg")
            if psycopg is not None and isinstance(exc, psycopg.Error):
                lost = _lost_server(root, exc)
                if lost is not None:
                    raise Exit(f"error: {lost}", code=1) from None
                # e.g. a role without CREATEDB; libpq never echoes passwords
                raise Exit(f"error: the server refused: {str(exc).strip()}", code=1) from None
            raise
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
    except Exit as exc:
        outcome = "ok" if exc.code == 0 else "interrupted" if exc.code == 130 else "failed"
        run_result.record(outcome, exc.message or "")
        raise
    except Exception as exc:
        run_result.record("failed", f"error: unexpected {type(exc).__name__}: {exc}")
        raise
    run_result.record("ok")


def _lost_server(root: Path, exc: psycopg.Error) -> str | None:
    """The report for a session the server ended mid-way (None for other database errors),
    with the engine's word when the settings load."""
    from pgkura.engines.server_lost import lost_server
    from pgkura.errors import PgkuraError

    try:
        settings = _settings(root)
    except PgkuraError:
        settings = None
    return lost_server(settings, exc)


def _settings(root: Path) -> Settings:
    from pgkura.config.settings import load_settings

    return load_settings(root)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def report(message: str) -> None:
    """What has been done, on stdout, the moment it is done (a failure may follow)."""
    print(message, flush=True)


def consent(yes: bool = False, force: bool = False) -> Consent:
    from pgkura.backups.consent import Consent

    return Consent(yes=yes, force=force, interactive=sys.stdin.isatty())


def progress() -> Reporter:
    """Progress on stderr: a redrawn line on a terminal, plain lines in logs (CI, a pipe, the
    scheduler's captured output)."""
    from pgkura.progress import Reporter

    return Reporter.to(sys.stderr)


def pg_version(number: int) -> str:
    return f"{number // 10000}.{number % 10000}"
