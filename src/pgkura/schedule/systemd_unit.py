"""A systemd service that keeps the scheduler (`invoke db.schedule --run`) alive: started at
boot after Docker, restarted when it crashes, stopped with SIGTERM to the runner alone (which
hands a running job SIGINT, as Ctrl-C would, so that it cleans up), logs in the journal.

systemd supervises; pgkura's runner decides when jobs are due (and catches up missed ones), so
a schedule behaves the same under any supervisor and `db.schedule` can report it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pgkura.config.settings import Settings
from pgkura.errors import PgkuraError
from pgkura.private_files import write_private


@dataclass(frozen=True)
class Unit:
    name: str
    path: Path
    text: str
    user: bool  # a user service (systemctl --user) rather than a system one
    managed: bool  # in systemd's own directory: pgkura runs systemctl (else it says what to run)


def unit(settings: Settings, *, user: bool, unit_dir: Path | None = None) -> Unit:
    """The service for this project (named after its Compose project)."""
    name = f"pgkura-{settings.compose_project}-scheduler.service"
    default = Path.home() / ".config" / "systemd" / "user" if user else Path("/etc/systemd/system")
    invoke = [sys.executable, "-m", "invoke", "--search-root", str(settings.root)]
    wanted = "default.target" if user else "multi-user.target"
    after = (
        "" if user else "\nAfter=docker.service network-online.target\nWants=network-online.target"
    )
    # a system service runs as whoever installed it (sudo's caller), never as root by default
    owner = "" if user else f"\nUser={os.environ.get('SUDO_USER') or getpass.getuser()}"
    text = f"""[Unit]
Description=pgkura scheduled backups and restore drills for {settings.root}{after}

[Service]
Type=simple{owner}
WorkingDirectory={settings.root}
ExecStart={" ".join(_quoted(a) for a in [*invoke, "db.schedule", "--run"])}
Restart=always
RestartSec=10
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=15min
UMask=0077

[Install]
WantedBy={wanted}
"""
    return Unit(name, (unit_dir or default) / name, text, user, managed=unit_dir is None)


def _quoted(arg: str) -> str:
    """systemd's own quoting: double quotes around arguments with spaces."""
    if any(c in arg for c in ' "\\\t'):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def install(service: Unit) -> list[str]:
    """Write the unit (0644) and enable it; what was done, or what remains to do by hand."""
    service.path.parent.mkdir(parents=True, exist_ok=True)
    write_private(service.path, service.text, mode=0o644)
    done = [f"wrote {service.path}"]
    return done + _systemctl(service, ["daemon-reload"], ["enable", "--now", service.name])


def remove(service: Unit) -> list[str]:
    """Disable and stop the service, then delete the unit."""
    if not service.path.exists():
        raise PgkuraError(f"{service.path} does not exist: nothing to remove")
    done = _systemctl(service, ["disable", "--now", service.name])
    service.path.unlink()
    return [*done, f"removed {service.path}", *_systemctl(service, ["daemon-reload"])]


def _systemctl(service: Unit, *commands: list[str]) -> list[str]:
    base = ["systemctl", *(["--user"] if service.user else [])]
    todo = "; ".join(" ".join([*base, *c]) for c in commands)
    if not service.managed:
        return [f"then, with the unit where systemd looks for it: {todo}"]
    if shutil.which("systemctl") is None:
        return [f"no systemctl here: run {todo}"]
    out = []
    for command in commands:
        result = subprocess.run([*base, *command], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PgkuraError(
                f"{' '.join([*base, *command])} failed: {result.stderr.strip()}\n→ is systemd "
                f"running here? The unit is written: {service.path}"
            )
        out.append(" ".join([*base, *command]))
    return out
