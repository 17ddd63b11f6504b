"""Whether a backup is complete and trustworthy: the one place that decides it.

A backup is whole when pg_dump's completion trailer went by as a line of its own (a dump cut
off between statements is otherwise valid SQL), and trustworthy when its file's SHA-256 is the
one its manifest recorded as it was written. Taking (take), reading (verify, restore, the
upgrade's load) and copying (offsite) all ask here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pgkura.checksums import sha256_of

TRAILERS = (
    b"-- PostgreSQL database dump complete",
    b"-- PostgreSQL database cluster dump complete",
)
MISSING_TRAILER = "the dump's completion trailer is missing: the dump was cut off before it ended"


def is_trailer(line: bytes) -> bool:
    """Whether one line of dump text (outside COPY data) is pg_dump's completion trailer."""
    return line.startswith(TRAILERS)


def ends_complete(tail: bytes) -> bool:
    """Whether the last bytes of a dump hold the trailer line."""
    return any(is_trailer(line) for line in tail.split(b"\n"))


def recorded(manifest: Mapping[str, object]) -> str:
    """The SHA-256 the manifest recorded when the file was written ("" without one)."""
    return str(manifest.get("sha256", ""))


def matches(manifest: Mapping[str, object], sha256: str) -> bool:
    """Whether `sha256` is the hash the manifest recorded (False when it recorded none)."""
    return bool(sha256) and recorded(manifest) == sha256


def unchanged(path: Path, manifest: Mapping[str, object]) -> bool:
    """Whether the file still hashes to what its manifest recorded."""
    return matches(manifest, sha256_of(path))


def problems(manifest: Mapping[str, object], sha256: str, *, trailer_seen: bool) -> list[str]:
    """What keeps a file read to its end from being a trustworthy backup; [] when nothing
    does. A file without a manifest (pg_dump's own, copied in) is judged by its trailer."""
    found = [] if trailer_seen else [MISSING_TRAILER]
    expected = recorded(manifest)
    if expected and expected != sha256:
        found.append(
            f"SHA-256 {sha256[:16]}… does not match the manifest's {expected[:16]}…: "
            "the file changed after it was written"
        )
    return found
