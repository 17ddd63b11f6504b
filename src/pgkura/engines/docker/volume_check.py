"""Before PostgreSQL 18 starts: is the data volume mounted where PostgreSQL 18 keeps its data,
and does it hold a cluster that PostgreSQL 18 cannot use?

PostgreSQL 18 images keep PGDATA in /var/lib/postgresql/18/docker, with the volume at
/var/lib/postgresql. A volume from an older setup (mounted at /var/lib/postgresql/data, so its
files sit at the volume's root, or under data/), or an older major's cluster, would make the
server initialise a new, empty cluster beside the real data, and the application would see an
empty database. So both are refused, with what was found and the way forward. Nothing here
initialises, moves or deletes anything; the volume is mounted read-only for the look.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

from pgkura.cache import cache_dir
from pgkura.config.settings import Settings
from pgkura.engines.docker.compose import DockerError, compose_argv, compose_env, image_exists
from pgkura.engines.docker.data_in_use import Lock
from pgkura.errors import PgkuraError

SERVER_MAJOR = 18
DATA_PARENT = "/var/lib/postgresql"  # where the volume belongs
PGDATA = f"{DATA_PARENT}/{SERVER_MAJOR}/docker"
HOME = f"{SERVER_MAJOR}/docker"  # PGDATA inside the volume
# PG_VERSION files where clusters live: the volume's root (mounted at .../data before 18),
# data/ (mounted at /var/lib/postgresql before 18), <major>/docker (18 and later)
_LOOK = r"""cd /v || exit 3
for f in PG_VERSION data/PG_VERSION */docker/PG_VERSION; do
  [ -f "$f" ] && printf 'cluster %s %s %s\n' "$(dirname "$f")" "$(head -c 8 "$f")" \
    "$(du -sk "$(dirname "$f")" | cut -f1)"
done
for f in postmaster.pid data/postmaster.pid */docker/postmaster.pid; do
  [ -f "$f" ] && printf 'lock %s %s %s\n' "$(dirname "$f")" "$(sed -n 1p "$f")" "$(sed -n 2p "$f")"
done
printf 'free %s\n' "$(df -Pk /v | awk 'NR==2 {print $4}')"
"""


class VolumeProblem(PgkuraError):
    """The data volume holds a cluster PostgreSQL 18 must not start beside, or is not mounted
    where PostgreSQL 18 keeps its data."""


@dataclass(frozen=True)
class Cluster:
    path: str  # inside the volume: ".", "data", "17/docker"
    major: int
    size_kib: int

    @property
    def layout(self) -> str:
        if self.path == HOME:
            return f"PostgreSQL {SERVER_MAJOR}'s own layout"
        if self.path in (".", "data"):
            where = "the volume's root" if self.path == "." else "data/ in the volume"
            return f"the pre-18 layout ({where})"
        return f"{self.path}/ in the volume"


@dataclass(frozen=True)
class Survey:
    clusters: tuple[Cluster, ...]
    free_kib: int  # on the file system that holds Docker's volumes
    locks: dict[str, Lock] = field(default_factory=dict)  # cluster path -> its postmaster.pid


def survey(settings: Settings, volume: str) -> Survey | None:
    """What `volume` holds (None if there is no such volume), through a throwaway container
    that mounts it read-only."""
    if _created(volume) is None:
        return None
    return _look(settings, volume)


def survey_dir(settings: Settings, directory: str) -> Survey:
    """The same for a host directory (a bind-mounted data directory of an older setup)."""
    return _look(settings, directory)


def _created(volume: str) -> str | None:
    """When `volume` was created (None when there is no such volume)."""
    found = subprocess.run(["docker", "volume", "inspect", "--format", "{{.CreatedAt}}", volume],
                           capture_output=True, text=True, check=False)  # fmt: skip
    return found.stdout.strip() if found.returncode == 0 else None


def _look(settings: Settings, source: str) -> Survey:
    """`source` (a volume's name or a host directory) mounted read-only in a throwaway
    container of the project's image (or its base, before the first build)."""
    image = settings.image if image_exists(settings.image) else settings.base_image
    argv = ["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh",
            "-v", f"{source}:/v:ro", image, "-c", _LOOK]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DockerError(f"could not look inside the data volume: {result.stderr.strip()}")
    clusters, free, locks = [], 0, {}
    for line in result.stdout.splitlines():
        words = line.split()
        if words[:1] == ["cluster"] and len(words) == 4 and words[2].isdigit():
            size = int(words[3]) if words[3].isdigit() else 0
            clusters.append(Cluster(words[1], int(words[2]), size))
        elif words[:1] == ["free"] and len(words) == 2 and words[1].isdigit():
            free = int(words[1])
        elif words[:1] == ["lock"] and len(words) >= 3:
            pid = int(words[2]) if words[2].isdigit() else 0  # unreadable: still a lock
            locks[words[1]] = Lock(pid, line.split(" ", 3)[3] if len(words) > 3 else "")
    return Survey(tuple(clusters), free, locks)


def strangers(found: Survey | None) -> list[Cluster]:
    """The clusters PostgreSQL 18 cannot start on where they are."""
    if found is None:
        return []
    return [c for c in found.clusters if not (c.path == HOME and c.major == SERVER_MAJOR)]


def describe(volume: str, clusters: list[Cluster]) -> str:
    found = "; ".join(f"PostgreSQL {c.major} data in {c.layout}" for c in clusters)
    return (
        f"the data volume {volume} holds {found}. PostgreSQL {SERVER_MAJOR} would not use it: "
        f"it would start a new, empty cluster in {HOME}/ beside it. Nothing was started or "
        "changed.\n→ `invoke db.upgrade --dry-run` shows how it moves into a new PostgreSQL "
        f"{SERVER_MAJOR} volume (the old one is kept); `invoke db.upgrade` does it"
    )


def mount_problem(settings: Settings) -> str | None:
    """Why the Compose service would keep PGDATA off the named volume, if it would: an old
    mount such as `pgdata:/var/lib/postgresql/data` leaves /var/lib/postgresql/18/docker on an
    anonymous volume (the image's VOLUME), so a new, empty cluster would be made there."""
    result = subprocess.run(
        compose_argv(settings, "config", "--format", "json"),
        env=compose_env(settings), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise DockerError(f"docker compose config failed: {result.stderr.strip()}")
    service = json.loads(result.stdout).get("services", {}).get("postgres", {})
    mounts = service.get("volumes") or []
    for mount in mounts:
        target = str(mount.get("target", "")).rstrip("/")
        if mount.get("type") in ("volume", "bind") and (PGDATA + "/").startswith(target + "/"):
            return None
    shown = ", ".join(f"{m.get('source', '(anonymous)')} at {m.get('target')}" for m in mounts)
    return (
        f"the postgres service mounts no volume where PostgreSQL {SERVER_MAJOR} keeps its data "
        f"({PGDATA}; mounts: {shown or 'none'}), so its data would go to an anonymous volume "
        f"and vanish with the container. Nothing was started.\n→ mount the data volume at "
        f"{DATA_PARENT} (not {DATA_PARENT}/data, the path of images before {SERVER_MAJOR})"
    )


def check(settings: Settings) -> None:
    """Refuse to start PostgreSQL 18 over data it cannot use (VolumeProblem). A volume once
    found holding PostgreSQL 18's own cluster is remembered, so later starts skip the look."""
    problem = mount_problem(settings)
    if problem:
        raise VolumeProblem(problem)
    created = _created(settings.volume)
    if created is None:
        return  # no volume yet: the first start makes it, in the right place
    seen = cache_dir() / "volumes" / f"{settings.volume}@{created}".replace(":", "_")
    if seen.exists():
        return
    found = _look(settings, settings.volume)
    odd = strangers(found)
    if odd:
        raise VolumeProblem(describe(settings.volume, odd))
    if found.clusters:
        seen.parent.mkdir(parents=True, exist_ok=True)
        seen.touch()
