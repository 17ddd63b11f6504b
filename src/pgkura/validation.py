"""What a valid value is, defined once for settings and flags alike.

A `Rule` turns the text a person typed (in `.env`, the environment or a flag) into a value, or
raises ConfigError naming where the text came from and what was expected. Settings and task
options use the same rules, so `PGKURA_BACKUP_LEVEL=10` and `--level 10` fail the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pgkura.durations import parse_ms
from pgkura.errors import ConfigError

T = TypeVar("T")
IDENTIFIER_MAX = 63  # NAMEDATALEN - 1


class SafeValueError(ValueError):
    """A ValueError whose message never contains the value (so a secret may be explained)."""


@dataclass(frozen=True)
class Rule(Generic[T]):
    """A parser and the words that say what it accepts. `secret` values are never echoed;
    `shown` renders a value that may hold a secret in part (a URL's password or token)."""

    parse: Callable[[str], T]
    expected: str
    secret: bool = False
    shown: Callable[[str], str] | None = None

    def check(self, text: str, *, name: str, where: str) -> T:
        try:
            return self.parse(text)
        except ValueError as exc:
            speaks = str(exc) and (not self.secret or isinstance(exc, SafeValueError))
            detail = f" ({exc})" if speaks else ""
            shown = name if self.secret else f"{name}={(self.shown or str)(text)!r}"
            raise ConfigError(
                f"{shown} from {where} is invalid: expected {self.expected}{detail}"
            ) from None

    def flag(self, text: str | None, flag: str) -> T | None:
        """The value of an optional command-line flag (None when it was not given)."""
        if text is None:
            return None
        return self.check(str(text).strip(), name=flag, where="the command line")


def _ranged(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())  # ValueError for anything but a whole number
        if value < low or (high is not None and value > high):
            raise ValueError("")
        return value

    return parse


def _identifier(text: str) -> str:
    if not text or len(text.encode()) > IDENTIFIER_MAX or "\x00" in text:
        raise ValueError("")
    return text


_HTTP_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$", re.IGNORECASE)


def is_http_url(text: str) -> bool:
    """An http:// or https:// URL with a host, in printable ASCII: what urllib may be handed
    (no file://; a control character or a non-ASCII one would make it fail with the URL, and
    so its token, in the message)."""
    return bool(_HTTP_URL.match(text)) and text.isascii() and text.isprintable()


def redact_url(text: str) -> str:
    """A URL as it may be shown: whatever precedes its last `@` (user, password: a password
    may hold `/`, `?` or `#` unencoded) and its whole query and fragment (tokens) become ***."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    return scheme + sep + rest[:cut] + (rest[cut] + "***" if cut < len(rest) else "")


def project_path(text: str, root: Path) -> Path:
    """A path as typed: `~` and `~user` expanded, relative to `root` unless absolute."""
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~name of a user this machine does not have
        raise ValueError(f"{text.split('/', 1)[0]} is not a known home directory") from None
    return path if path.is_absolute() else root / path


PORT = Rule(_ranged(1, 65535), "a port number 1-65535")
GZIP_LEVEL = Rule(_ranged(1, 9), "a compression level 1-9")
COMPRESSIONS = ("gzip", "zstd")


def _compression(text: str) -> str:
    if text.strip().lower() not in COMPRESSIONS:
        raise ValueError("")
    return text.strip().lower()


COMPRESSION = Rule(_compression, "gzip or zstd")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value not in (*_TRUE, *_FALSE):
        raise ValueError("")
    return value in _TRUE


BOOLEAN = Rule(_boolean, "true or false (yes/no, on/off, 1/0 also)")
KEEP = Rule(_ranged(0), "a whole number of backups, 0 or more")
VERSION = Rule(_ranged(0), "a migration number, 0 or more")
STEPS = Rule(_ranged(1), "a whole number of migrations, 1 or more")
LINES = Rule(_ranged(0), "a whole number of lines, 0 or more")
DURATION = Rule(parse_ms, "a duration such as 500ms, 5s, 2min or 1h")
ROLE = Rule(_identifier, "a role name (1-63 bytes)")
DATABASE = Rule(_identifier, "a database name (1-63 bytes)")
SCHEMA = Rule(_identifier, "a schema name (1-63 bytes)")
TABLE = Rule(_identifier, "a table name (1-63 bytes)")
# A file named on the command line: relative to the current directory, as a shell would read it.
FILE_PATH = Rule(lambda text: project_path(text, Path.cwd()), "a file path")
