"""The container's TLS: a development CA and the server's certificate (PGKURA_TLS=self-signed),
or the team's own files (provided), in PGKURA_TLS_DIR on the host.

The directory is mounted read-only at one fixed path; the image's entrypoint
(docker/postgres/pgkura-entrypoint) copies the files where PostgreSQL accepts them (the key
owned by the server's user, mode 0600: a bind mount keeps the host's owner, which PostgreSQL
refuses) and turns `ssl` on.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pgkura.config.settings import Settings
from pgkura.config.tls import CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE, Tls
from pgkura.engines.docker.compose import SERVICE
from pgkura.errors import ConfigError
from pgkura.private_files import write_private

if TYPE_CHECKING:
    from cryptography import x509

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity that browsers' and OSes' trust stores still accept
Log = Callable[[str], None]


def server_names(settings: Settings) -> list[str]:
    """Every name a client may dial: this machine (the published port), the container and its
    Compose service (applications in the project's network), and PGKURA_TLS_NAMES."""
    names = ["localhost", "127.0.0.1", "::1", settings.container_name, SERVICE]
    return list(dict.fromkeys([*names, *settings.tls.names]))


def make_certificates(settings: Settings, *, force: bool = False) -> list[Path]:
    """A development CA and a server certificate signed by it, in PGKURA_TLS_DIR; the files
    written. Existing files are kept unless `force` (clients that trust the old CA would
    then need the new ca.crt)."""
    tls = settings.tls
    if tls.mode == "provided":
        raise ConfigError(
            "PGKURA_TLS=provided: pgkura does not make certificates; put yours in "
            f"{tls.directory} ({CERT_FILE}, {KEY_FILE}, and {CA_FILE} for clients).\n"
            "→ or set PGKURA_TLS=self-signed for a development CA"
        )
    files = [tls.path(n) for n in (CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE)]
    if not force and all(f.is_file() for f in files):
        return []
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pgkura development CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    names = server_names(settings)
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[3])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    plain = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    tls.directory.mkdir(parents=True, exist_ok=True)
    write_private(tls.path(CA_KEY_FILE), ca_key.private_bytes(pem, pkcs8, plain))
    write_private(tls.path(KEY_FILE), key.private_bytes(pem, pkcs8, plain))
    write_private(tls.path(CA_FILE), ca.public_bytes(pem), mode=0o644)
    certificate = server.public_bytes(pem) + ca.public_bytes(pem)
    write_private(tls.path(CERT_FILE), certificate, mode=0o644)
    return files


def _general_name(name: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def prepare(settings: Settings, log: Log) -> None:
    """Before the container starts with TLS: the certificates exist (self-signed: made when
    missing), or ConfigError saying which file is missing."""
    tls = settings.tls
    if not tls.enabled:
        return
    if tls.mode == "self-signed" and make_certificates(settings):
        log(f"TLS: made a development CA and a server certificate in {tls.directory}")
    missing = [n for n in (CERT_FILE, KEY_FILE, CA_FILE) if not tls.path(n).is_file()]
    if missing:
        raise ConfigError(_missing(tls, missing))


def _missing(tls: Tls, missing: list[str]) -> str:
    return (
        f"PGKURA_TLS={tls.mode} but {', '.join(missing)} missing from {tls.directory}.\n"
        f"→ put the server's certificate ({CERT_FILE}, the chain after it), its key "
        f"({KEY_FILE}) and the CA that clients trust ({CA_FILE}) there, or set "
        "PGKURA_TLS=self-signed and run `invoke db.tls-cert`"
    )
