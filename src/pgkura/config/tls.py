"""What PGKURA_TLS and its companions mean: where the certificates are and how clients check
them. Making certificates and mounting them into the container belong to engines/docker/tls.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODES = ("off", "self-signed", "provided")
CA_FILE = "ca.crt"  # what clients trust (the development CA, or the provider's chain)
CERT_FILE = "server.crt"
KEY_FILE = "server.key"
CA_KEY_FILE = "ca.key"  # the development CA's key (self-signed only)


@dataclass(frozen=True)
class Tls:
    """TLS for the project's container: off (the default), self-signed (pgkura makes a
    development CA and the server's certificate), or provided (your files, same names)."""

    mode: str
    directory: Path  # on the host; mounted read-only into the container
    names: tuple[str, ...]  # extra host names and addresses for the server certificate

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def path(self, name: str) -> Path:
        return self.directory / name

    def client_params(self) -> dict[str, str]:
        """libpq options for pgkura's own TCP connections: the certificate must come from our
        CA and name the host we dialled (no silent fallback to plain text)."""
        if not self.enabled:
            return {}
        return {"sslmode": "verify-full", "sslrootcert": str(self.path(CA_FILE))}


def parse_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if any(not n.isascii() or not n.isprintable() or " " in n or "/" in n for n in names):
        raise ValueError("")
    return names
