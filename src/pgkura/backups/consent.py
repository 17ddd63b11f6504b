"""How a person agreed to a step that deletes or replaces data: --yes, --force, a prompt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pgkura.config.settings import Settings
from pgkura.confirm import confirm

Ask = Callable[[str], str]


@dataclass(frozen=True)
class Consent:
    """How a destructive step was agreed to: --yes, --force, and whether a person is there."""

    yes: bool = False
    force: bool = False
    interactive: bool = False
    ask: Ask = input

    def require(self, settings: Settings, action: str) -> None:
        confirm(action, yes=self.yes, production=settings.is_production,
                dbname=settings.target.dbname, interactive=self.interactive,
                ask=self.ask)  # fmt: skip
