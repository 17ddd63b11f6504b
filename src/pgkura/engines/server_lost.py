"""The report for a session the server ended mid-way, with the engine's word on the server."""

from __future__ import annotations

import psycopg

from pgkura.config.settings import Settings
from pgkura.connect.connection import session_lost, where_logs
from pgkura.engines.chosen import engine_for


def lost_server(settings: Settings | None, exc: psycopg.Error) -> str | None:
    """For an error meaning the server ended our session mid-way: what happened, the engine's
    word on the server now, and what to do; None for an ordinary database error. Without
    settings (they did not load) the server's word alone."""
    why = session_lost(exc)
    if why is None:
        return None
    primary = " ".join((exc.diag.message_primary or str(exc)).split()) or type(exc).__name__
    now = "" if settings is None else engine_for(settings).server_now()
    return (
        f"the server ended this session mid-way: {why}. Its message: {primary}\n{now}"
        "What this task had not committed was rolled back.\n→ "
        f"{where_logs(settings.target) if settings else 'The server log'} says why; run this "
        "again once the server takes connections"
    )
