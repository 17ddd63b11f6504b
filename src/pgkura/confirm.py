"""Confirmation of destructive steps: `--yes`, or a person at a terminal who says so.

A non-interactive run (CI, cron) without `--yes` is refused rather than assumed. In production
the person must type the database's name, not just `y`.
"""

from __future__ import annotations

from collections.abc import Callable

from pgkura.errors import ConfirmationRequired


def confirm(
    action: str,
    *,
    yes: bool,
    production: bool,
    dbname: str,
    interactive: bool,
    ask: Callable[[str], str] = input,
) -> None:
    """Return if `action` may go ahead; ConfirmationRequired otherwise."""
    if yes:
        return
    if not interactive:
        raise ConfirmationRequired(
            f"refusing to {action} without confirmation in a non-interactive run; "
            "pass --yes if you mean it"
        )
    if production:
        answer = ask(f"PRODUCTION: {action}. Type the database name ({dbname}) to go ahead: ")
        if answer.strip() != dbname:
            raise ConfirmationRequired(f"not confirmed; nothing was changed ({action})")
        return
    answer = ask(f"{action}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise ConfirmationRequired(f"not confirmed; nothing was changed ({action})")
