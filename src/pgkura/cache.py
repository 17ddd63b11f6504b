"""pgkura's cache directory: things worth keeping between runs that can always be rebuilt
(the throwaway server's pg_bigm build, migration files already parsed)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """PGKURA_CACHE_DIR, else the user's cache directory (~/.cache/pgkura on Linux)."""
    chosen = os.environ.get("PGKURA_CACHE_DIR")
    return Path(chosen) if chosen else platformdirs.user_cache_path("pgkura")
