"""Changing one setting in the settings file, for the tasks that move the project onto other
data (db.upgrade, db.restore-to and db.promote set PGKURA_VOLUME)."""

from __future__ import annotations

import os
import re

from pgkura.config.settings import Settings
from pgkura.private_files import write_private


def set_value(settings: Settings, name: str, value: str, note: str) -> str:
    """Set `name=value` in the settings file (keeping its mode; `note` as the comment above a
    new line); what to say about it. A variable set in the environment wins over the file, so
    then nothing is written and the person is told to change it there."""
    if name in os.environ:
        return (f"{name} is set in the environment: set it to {value} there (the settings "
                "file is not changed)")  # fmt: skip
    path = settings.env_file
    text = path.read_text() if path.is_file() else ""
    line = f"{name}={value}"
    pattern = re.compile(rf"^\s*(?:export\s+)?{name}\s*=.*$", re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: line, text, count=1)
    else:
        text = text + ("" if not text or text.endswith("\n") else "\n") + f"# {note}\n{line}\n"
    mode = path.stat().st_mode & 0o777 if path.is_file() else 0o600
    write_private(path, text, mode=mode)
    return f"{path}: {line}"
