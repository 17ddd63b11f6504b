"""Waiting for the target server, with the engine's word on the container.

A stopped container will not start answering however long we poll: when the target is the
project's container, each failed attempt asks Docker for its state, so a task fails within a
second or two with the state and the remedy instead of after the whole connect wait.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from pgkura.compose import container_state, require_up
from pgkura.config import Settings
from pgkura.connection import wait_until_ready
from pgkura.dsn import Target


def ready(
    settings: Settings,
    target: Target | None = None,
    *,
    timeout_ms: int | None = None,
    poll_s: float = 0.25,
    still_hopeful: Callable[[], None] | None = None,
) -> int:
    """Wait until `target` (default: the settings' target) answers; its version number.
    `still_hopeful` replaces the default container check (see `wait_until_ready`)."""
    target = target or settings.target
    hopeful = still_hopeful or (container_alive(settings) if target.is_container else None)
    return wait_until_ready(
        target,
        settings.connect_wait_ms if timeout_ms is None else timeout_ms,
        poll_s=poll_s,
        still_hopeful=hopeful,
    )


def container_alive(settings: Settings) -> Callable[[], None] | None:
    """A check that raises when the container is missing or stopped (None without docker:
    then the host and port are all we know)."""
    if shutil.which("docker") is None:
        return None

    def check() -> None:
        require_up(settings, container_state(settings), restarting_ok=True)

    return check
