"""What PGKURA_OFFSITE_URL (s3://bucket/prefix), its endpoint, server-side encryption and the
standard AWS_* variables mean; the copies themselves are backups.offsite's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SSE_CHOICES = ("AES256", "aws:kms")


_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


@dataclass(frozen=True)
class Offsite:
    """Where off-site copies go and how to reach it."""

    bucket: str
    prefix: str  # "" or "path/inside/bucket/"
    endpoint: str | None = None  # None: AWS itself (or AWS_ENDPOINT_URL)
    sse: str | None = None
    aws: dict[str, str] = field(default_factory=dict, repr=False)
    ca_file: Path | None = None  # PGKURA_S3_CA_FILE: the CA of an endpoint with a private one

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, name: str) -> str:
        return self.prefix + name

    @property
    def region(self) -> str:
        return self.aws.get("AWS_REGION") or self.aws.get("AWS_DEFAULT_REGION") or "us-east-1"


def parse_s3_url(text: str) -> tuple[str, str]:
    """(bucket, prefix ending in / or empty) of s3://bucket[/prefix]; ValueError otherwise."""
    if not text.startswith("s3://"):
        raise ValueError("an s3://bucket/prefix URL")
    if "@" in text:  # s3://KEY:SECRET@bucket: boto3 would not use them, and they would show
        raise ValueError(
            "an s3://bucket/prefix URL without credentials: the keys go in AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY (the environment or .env)"
        )
    bucket, _, prefix = text[len("s3://") :].partition("/")
    if not (3 <= len(bucket) <= 63) or not all(c.isalnum() or c in "-." for c in bucket):
        raise ValueError("an s3://bucket/prefix URL with a valid bucket name")
    if not bucket.isascii() or bucket != bucket.lower():
        raise ValueError("an s3://bucket/prefix URL with a lower-case bucket name")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ValueError("an s3://bucket/prefix URL without empty, . or .. path parts")
    return bucket, (prefix + "/" if prefix else "")


def aws_settings(values: Callable[[str], str | None]) -> dict[str, str]:
    """The standard AWS_* variables that are set, read the way every setting is (.env too)."""
    return {name: value for name in _AWS_VARIABLES if (value := values(name))}
