"""The task that moves an older major's data into PostgreSQL 18."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.wiring import consent, progress, say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings


@task(
    help={
        "dry-run": "print the plan, the sizes and the space needed; change nothing",
        "from-volume": "the volume holding the old data (default: the project's, PGKURA_VOLUME)",
        "from-dir": "a host directory holding the old data directory instead",
        "to-volume": "the new PostgreSQL 18 volume (default: <old volume>_pg18)",
        "old-image": "the image to run the old major with (default pgvector/pgvector:pg<major>)",
        "yes": "do not ask for confirmation",
    }
)
def upgrade(
    c: Context,
    settings: Settings,
    dry_run: bool = False,
    from_volume: str = "",
    from_dir: str = "",
    to_volume: str = "",
    old_image: str = "",
    yes: bool = False,
) -> None:
    """upgrade: move 15/16/17 data into PostgreSQL 18

    Move the data of PostgreSQL 15/16/17 (or 18 in the old layout) into a new 18 volume.

    Examples:
      invoke db.upgrade --dry-run
      invoke db.upgrade --from-volume myapp_pgdata --yes
    """
    from pgkura.engines.chosen import engine_for
    from pgkura.engines.docker.compose import require_docker
    from pgkura.upgrade.major import in_use, make_plan, point_project_at, refuse_if_in_use
    from pgkura.upgrade.major import upgrade as carry_out

    engine_for(settings).docker_only("db.upgrade (volumes of older PostgreSQL images)")
    require_docker()
    if from_volume and from_dir:
        raise Exit("error: choose one of --from-volume, --from-dir")
    plan = make_plan(settings, from_volume=from_volume, from_dir=from_dir,
                     to_volume=to_volume, old_image=old_image)  # fmt: skip
    for line in plan.lines():
        print(line)
    if dry_run:
        for user in in_use(settings, plan):
            print(f"in use (stop it first): {user}")
        print("dry run: nothing was started or changed")
        return
    refuse_if_in_use(settings, plan)  # before asking; the upgrade looks again
    consent(yes).require(settings, f"upgrade {plan.source} into a new volume {plan.target}")
    backup, updated = carry_out(settings, plan, say, progress())
    print(f"backup of the old cluster: {backup}")
    for line in updated:
        print(f"extension updated: {line}")
    print("indexes: all rebuilt by the restore, none needs a REINDEX")
    print(point_project_at(settings, plan.target))
    print(f"upgraded: start it with `invoke db.up`. To go back: set PGKURA_VOLUME="
          f"{plan.source} and the old image again; {plan.source} is unchanged")  # fmt: skip
