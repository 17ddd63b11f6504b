"""The tasks of the streaming standby: create (or start, rebuild, drop) it, and promote it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.wiring import consent, progress, say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings


@task(
    help={
        "rebuild": "delete the standby (container, volume, slot) and clone the primary again",
        "drop": "remove the standby, its volume and its slot (frees the WAL the slot keeps)",
        "yes": "do not ask for confirmation (--rebuild, --drop)",
    }
)
def standby(
    c: Context, settings: Settings, rebuild: bool = False, drop: bool = False, yes: bool = False
) -> None:
    """standby: clone the primary into a streaming standby

    Create a streaming standby of the project's server on this host (a second container of the
    same image, its own volume), cloned with pg_basebackup through a replication slot while the
    application keeps writing. Run again, it says how the standby is doing, or starts it.

    Examples:
      invoke db.standby
      invoke db.standby --rebuild --yes
      invoke db.standby --drop
    """
    from pgkura.replication import standby as node
    from pgkura.replication.state import describe

    if rebuild and drop:
        raise Exit("error: choose one of --rebuild, --drop")
    if drop or rebuild:
        what = "remove" if drop else "rebuild"
        consent(yes).require(settings, f"{what} the standby {settings.standby_container} and "
                             f"delete its volume {settings.standby_volume}")  # fmt: skip
    if drop:
        node.drop(settings, say)
        return
    made = node.create(settings, say, rebuild=rebuild, progress=progress())
    how = (describe(made.replica) if made.replica else f"its slot {made.slot} is gone from "
           "the primary → `invoke db.standby --rebuild` clones it again")  # fmt: skip
    if made.already:
        print(f"standby {made.container} exists already and runs: {how}")
        return
    verb = "started" if made.started else "created"
    print(f"standby {verb}: {made.container} ({how})")
    print(f"read-only connections: {node.standby_target(settings).redacted()}")


@task(
    name="promote",
    help={
        "stop-old": "stop the old primary first if it still accepts writes (no writes lost)",
        "yes": "do not ask for confirmation",
    },
)
def promote(c: Context, settings: Settings, stop_old: bool = False, yes: bool = False) -> None:
    """standby: make the standby the primary

    Promote the standby and make it the project's server (the two volumes swap in the settings
    file). Refused while the old primary still accepts writes, unless --stop-old.

    Examples:
      invoke db.promote
      invoke db.promote --stop-old --yes
    """
    from pgkura.replication.standby import promote as carry_out

    agreed = consent(yes)
    done = carry_out(settings, say, lambda what: agreed.require(settings, what), stop_old=stop_old)
    for line in done.switched:
        print(line)
    promotion = done.promotion
    print(f"promoted: timeline {promotion.timeline}, the project's server is {done.target}")
    print(f"applications: {application_address(settings)} (unchanged: the promoted data runs "
          f"in {settings.container_name})")  # fmt: skip
    print(f"the old primary's data is kept in volume {promotion.demoted_volume} and refused as "
          "a target; make it the new standby with `invoke db.standby --rebuild`")  # fmt: skip


def application_address(settings: Settings) -> str:
    """Where applications connect to the project's server, without the password."""
    user, db = settings.postgres_user, settings.postgres_db
    inside = f"postgresql://{user}@{settings.container_name}:5432/{db} on the project's network"
    if settings.is_production:
        return inside
    return f"postgresql://{user}@127.0.0.1:{settings.postgres_port}/{db}, or {inside}"


def standby_lines(settings: Settings) -> list[str]:
    """`standby: ...` lines for db.ps and db.status once pgkura made or promoted a standby
    here (the server is not asked otherwise)."""
    from pgkura.connect.connection import connect
    from pgkura.errors import PgkuraError
    from pgkura.replication.roles import replication_in_use
    from pgkura.replication.state import project_findings

    if not replication_in_use(settings):
        return []
    try:
        with connect(settings.target, purpose="standby state", connect_timeout=5) as conn:
            found = project_findings(settings, conn)
    except PgkuraError as exc:  # the server's state above says more
        return [f"standby: not known, the server did not answer ({str(exc).splitlines()[0]})"]
    return [f"standby: {detail}" if level == "ok" else f"standby [{level}]: {detail}"
            for level, detail in found]  # fmt: skip
