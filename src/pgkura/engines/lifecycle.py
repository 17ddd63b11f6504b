"""What `db.up` and `db.ps` do on any engine: the note on pgkura's choice of engine, keeping
that choice once the engine holds data, and the server's condition beside the engine's state."""

from __future__ import annotations

from pgkura.config.engine_choice import remember
from pgkura.config.settings import Settings
from pgkura.engines.base import Log
from pgkura.engines.chosen import engine_for
from pgkura.engines.readiness import condition


def up(settings: Settings, *, build_first: bool = False, log: Log) -> int:
    """Start the engine's server and wait until it answers a query; its version number."""
    if settings.engine_note:
        log(settings.engine_note)
    version = engine_for(settings).up(log, build=build_first)
    if settings.engine_chosen:  # an engine pgkura chose now holds the data: later runs stay
        remember(settings.root, settings.engine)
    return version


def show_state(settings: Settings) -> int:
    """The engine's state (container and health, or the embedded server's), and a line on the
    server when it runs but is not simply up (the health check does not see a crash restart
    that is over); an exit status."""
    state = engine_for(settings).state()
    if state.text:
        print(state.text)
    note = condition(settings) if state.running else None
    if note:
        print(f"note: {note}")
    return state.code
