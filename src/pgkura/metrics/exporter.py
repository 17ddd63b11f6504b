"""The server's side of the `metrics` Compose profile: the role postgres_exporter logs in as."""

from __future__ import annotations

from pgkura.config.settings import Settings
from pgkura.connect.connection import connect

MONITOR_ROLE = "pgkura_monitor"


def ensure_monitor_role(settings: Settings) -> bool:
    """Create the exporter's role when missing (True): it may log in and read statistics
    (pg_monitor), nothing else; a few connections at most. It has no password: the exporter
    connects through the server's socket, trusted like every local connection."""
    with connect(settings.target, purpose="metrics") as conn:
        found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MONITOR_ROLE,))
        if found.fetchone() is not None:
            return False
        conn.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN CONNECTION LIMIT 3 IN ROLE pg_monitor")
        return True
