"""The off-site S3-compatible storage (PGKURA_OFFSITE_URL) as pgBackRest's second repository
when PITR is on: the values docker-compose.pitr-s3.yml is given, checked before Compose sees
them. Credentials reach the container through Compose's environment, never a command line.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pgkura.config.offsite import Offsite
from pgkura.config.settings import Settings
from pgkura.errors import PgkuraError

FILE = "docker-compose.pitr-s3.yml"
REPO = 2  # pgBackRest's index: repo1 is the local volume
CA_IN_CONTAINER = "/etc/pgkura/s3-ca.pem"
SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"  # in the image (Debian's ca-certificates)


class S3RepositoryError(PgkuraError):
    """The off-site settings cannot serve as pgBackRest's S3 repository."""


def configured(settings: Settings) -> bool:
    return settings.pitr.enabled and settings.offsite is not None


def path(offsite: Offsite) -> str:
    """Beside the dumps' copies, in a folder of its own (their listing skips folders)."""
    return f"/{offsite.prefix}pgbackrest"


def compose_values(settings: Settings) -> dict[str, str]:
    """The PGKURA_PITR_S3_* variables of docker-compose.pitr-s3.yml and the AWS keys it hands
    to pgBackRest (none unless `configured`); S3RepositoryError with the remedy when they
    cannot work."""
    offsite = settings.offsite
    if offsite is None or not settings.pitr.enabled:
        return {}
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    if not all(offsite.aws.get(k) for k in keys):
        raise S3RepositoryError(
            "PITR archives to PGKURA_OFFSITE_URL too, and pgBackRest needs the keys themselves "
            "(it reads no AWS profile or session token)\n→ set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (in .env or the environment) for a user allowed to write "
            f"under {offsite.url}"
        )
    if offsite.sse:
        raise S3RepositoryError(
            f"PGKURA_S3_SSE={offsite.sse} cannot be asked of pgBackRest: it requests "
            "server-side encryption only with a KMS key ID (repo2-s3-kms-key-id) or a customer "
            "key (SSE-C), never AES256 or the account's default KMS key, so the WAL archive would "
            "go off-site without the encryption the dumps ask for\n→ make encryption the "
            f"bucket's own default (it then covers every object under {offsite.url}; AWS "
            "applies SSE-S3 to every bucket by default) and unset PGKURA_S3_SSE"
        )
    values = {k: offsite.aws[k] for k in keys}
    if offsite.endpoint:
        url = urlsplit(offsite.endpoint)
        if url.scheme != "https" or not url.hostname:
            raise S3RepositoryError(
                "pgBackRest reaches S3 storage only over TLS, and PGKURA_S3_ENDPOINT is "
                f"{url.scheme}://\n→ serve the storage over https:// (a private CA: name its "
                "certificate in PGKURA_S3_CA_FILE)"
            )
        host, port, style = url.hostname, str(url.port or 443), "path"
    else:
        host, port, style = f"s3.{offsite.region}.amazonaws.com", "443", "host"
    ca = offsite.ca_file
    return {
        **values,
        "PGKURA_PITR_S3_BUCKET": offsite.bucket,
        "PGKURA_PITR_S3_PATH": path(offsite),
        "PGKURA_PITR_S3_HOST": host,
        "PGKURA_PITR_S3_PORT": port,
        "PGKURA_PITR_S3_REGION": offsite.region,
        "PGKURA_PITR_S3_URI_STYLE": style,
        # the file itself is mounted read-only; without one, the image's public CAs
        "PGKURA_PITR_S3_CA_FILE": str(ca) if ca else "/dev/null",
        "PGKURA_PITR_S3_CA": CA_IN_CONTAINER if ca else SYSTEM_CAS,
    }
