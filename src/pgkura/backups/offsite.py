"""Off-site copies of backups in S3-compatible storage (AWS S3, Cloudflare R2, Backblaze B2,
Wasabi, MinIO, Google Cloud Storage's S3 API), configured by PGKURA_OFFSITE_URL=s3://bucket/prefix.

A backup is uploaded only once its local file is complete and re-hashed against its manifest;
the data object goes first (a multipart upload is invisible until it completes) and the
manifest last, so a backup without its manifest is never counted as one. Each remote object
carries the file's SHA-256 in its metadata; a download is hashed as it arrives and refused
unless it matches. boto3 is imported only when an off-site location is configured.
Credentials come from the standard AWS_* variables (the environment or .env) and are never
printed: errors name the operation, the bucket and the key. What a failed upload leaves
behind (an unfinished multipart upload, a data object whose manifest never came) is removed
by a later backup once it is a day old: younger ones may be uploads still under way.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pgkura.backups import integrity
from pgkura.backups.store import (
    ORDINARY,
    Backup,
    BackupNotFound,
    is_backup_name,
    manifest_path,
    own_backups,
    plan_retention,
)
from pgkura.config.offsite import Offsite
from pgkura.errors import PgkuraError
from pgkura.private_files import write_private
from pgkura.progress import QUIET, Meter, Reporter
from pgkura.retention import Policy
from pgkura.validation import redact_url

Log = Callable[[str], None]
LEFTOVER_GRACE = timedelta(hours=24)
_NO_UPLOADS = ("NoSuchUpload", "NotImplemented")
PART_SIZE = 64 * 2**20  # multipart above this; S3 allows 10,000 parts: 640 GB per backup
_CHUNK = 2**20


class OffsiteError(PgkuraError):
    """An off-site copy could not be made, listed or fetched; local files are untouched."""


class _Bytes:
    """Feeds a progress meter the bytes moved so far (boto3 reports from its worker threads,
    and takes bytes back when it retries a part)."""

    def __init__(self, meter: Meter) -> None:
        self.meter, self.done = meter, 0
        self._lock = threading.Lock()

    def __call__(self, moved: int) -> None:
        with self._lock:
            self.done += moved
            self.meter.update(self.done)


class RemoteStore:
    """The backups under one s3://bucket/prefix."""

    def __init__(
        self, offsite: Offsite, *, part_size: int = PART_SIZE, progress: Reporter = QUIET
    ) -> None:
        self.offsite = offsite
        self.part_size = part_size
        self.progress = progress  # uploads' and downloads' bytes, for a person watching
        self._client: Any = None  # a boto3 S3 client, made on first use

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _client(self.offsite)
        return self._client

    # -- writing --------------------------------------------------------------------------

    def upload(self, backup: Backup) -> str:
        """Copy a complete local backup and its manifest; the data object's key."""
        if not integrity.unchanged(backup.path, backup.manifest):
            raise OffsiteError(
                f"{backup.path.name} no longer matches the SHA-256 in its manifest; it was not "
                "uploaded"
            )
        key = self.offsite.key(backup.path.name)
        sha256 = integrity.recorded(backup.manifest)
        extra: dict[str, Any] = {"Metadata": {"sha256": sha256}}
        if self.offsite.sse:
            extra["ServerSideEncryption"] = self.offsite.sse
        with self._calling("upload", key):
            from boto3.s3.transfer import TransferConfig

            config = TransferConfig(
                multipart_threshold=self.part_size, multipart_chunksize=self.part_size
            )
            size = backup.path.stat().st_size
            with self.progress.meter(f"upload {backup.path.name}", size) as meter:
                self.client.upload_file(
                    str(backup.path), self.offsite.bucket, key, ExtraArgs=extra, Config=config,
                    Callback=_Bytes(meter),
                )  # fmt: skip
        self._check_uploaded(key, backup)
        with self._calling("upload", key + ".json"):
            self.client.put_object(
                Bucket=self.offsite.bucket,
                Key=key + ".json",
                Body=manifest_path(backup.path).read_bytes(),
                ContentType="application/json",
                **({"ServerSideEncryption": self.offsite.sse} if self.offsite.sse else {}),
            )
        return key

    def _check_uploaded(self, key: str, backup: Backup) -> None:
        with self._calling("check", key):
            head = self.client.head_object(Bucket=self.offsite.bucket, Key=key)
        stored = {k.lower(): v for k, v in head.get("Metadata", {}).items()}
        size = backup.path.stat().st_size
        if head.get("ContentLength") != size or not integrity.matches(
            backup.manifest, stored.get("sha256", "")
        ):
            raise OffsiteError(
                f"{self.offsite.url}{key[len(self.offsite.prefix) :]} does not match the local "
                "file after the upload (size or SHA-256); the local backup is kept"
            )

    def delete(self, name: str) -> None:
        """Remove a backup's manifest first (then it no longer counts), then its data."""
        for key in (self.offsite.key(name) + ".json", self.offsite.key(name)):
            with self._calling("delete", key):
                self.client.delete_object(Bucket=self.offsite.bucket, Key=key)

    def prune(self, dbname: str, mode: str, policy: Policy) -> list[str]:
        """Delete what `policy` does not keep, as locally; the names that went."""
        if not policy.active:
            return []
        gone = []
        for entry, reasons in plan_retention(self.entries(), dbname, mode, policy):
            if not reasons:
                self.delete(entry.path.name)
                gone.append(entry.path.name)
        return gone

    def remove_leftovers(self, older_than: datetime) -> list[str]:
        """Abort the multipart uploads of backups that a failure cut off and delete the data
        objects whose manifest never arrived, when begun before `older_than` (younger ones may
        be uploads under way); what went, in words."""
        from botocore.exceptions import ClientError

        gone = []
        with self._calling("list uploads in", self.offsite.prefix):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.offsite.bucket, Prefix=self.offsite.prefix
            )
            try:
                unfinished = [u for page in pages for u in page.get("Uploads", [])]
            except ClientError as exc:  # rclone says NoSuchUpload for none; some cannot list
                if exc.response.get("Error", {}).get("Code") not in _NO_UPLOADS:
                    raise
                unfinished = []
        for upload in unfinished:
            name = upload["Key"][len(self.offsite.prefix) :]
            if is_backup_name(name) and upload["Initiated"] < older_than:
                with self._calling("abort the upload of", upload["Key"]):
                    self.client.abort_multipart_upload(
                        Bucket=self.offsite.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                gone.append(f"the unfinished multipart upload of {name}")
        data, manifests = self._listing()
        for name, modified in sorted(data.items()):
            key = self.offsite.key(name)
            if name not in manifests and modified < older_than:
                with self._calling("delete", key):
                    self.client.delete_object(Bucket=self.offsite.bucket, Key=key)
                gone.append(f"{name}, whose manifest never arrived")
        return gone

    # -- reading --------------------------------------------------------------------------

    def entries(self) -> list[Backup]:
        """Every complete backup under the prefix (data and manifest both there), oldest first:
        Backup(Path(name), manifest)."""
        data, manifests = self._listing()
        found = [Backup(Path(n), self._manifest(n)) for n in data.keys() & manifests]
        return sorted(found, key=lambda e: e.order)

    def _listing(self) -> tuple[dict[str, datetime], set[str]]:
        """The backup data objects directly under the prefix (name: last modified), and the
        names whose manifest is there. One level only (Delimiter): folders under the prefix,
        pgBackRest's repository among them, are neither walked nor taken for dumps."""
        data, manifests = {}, set()
        with self._calling("list", self.offsite.prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.offsite.bucket, Prefix=self.offsite.prefix, Delimiter="/"
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(self.offsite.prefix) :]
                    if name.endswith(".json"):
                        manifests.add(name[: -len(".json")])
                    elif is_backup_name(name):
                        data[name] = obj["LastModified"]
        return data, manifests

    def _manifest(self, name: str) -> dict[str, Any]:
        key = self.offsite.key(name) + ".json"
        with self._calling("read", key):
            body = self.client.get_object(Bucket=self.offsite.bucket, Key=key)["Body"].read()
        try:
            data = json.loads(body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def find(self, spec: str, dbname: str) -> Backup:
        """`latest` (the newest ordinary backup of `dbname`) or a backup's file name."""
        if spec == "latest":
            own = own_backups(self.entries(), dbname, purpose=ORDINARY)
            if not own:
                raise BackupNotFound(
                    f"no backups of database {dbname} in {self.offsite.url}\n→ `invoke db.backups "
                    "--remote` lists what is there"
                )
            return own[-1]
        name = spec.rsplit("/", 1)[-1]
        for entry in self.entries():
            if entry.path.name == name:
                return entry
        raise BackupNotFound(f"no backup named {name} in {self.offsite.url}")

    @contextmanager
    def fetched(self, backup: Backup, directory: Path) -> Iterator[Path]:
        """Download `backup` into a private temporary directory under `directory`, verified
        against its SHA-256 before anyone uses it; the path, removed afterwards."""
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".pgkura-remote-", dir=directory) as tmp:  # 0700
            local = Path(tmp) / backup.path.name
            key = self.offsite.key(backup.path.name)
            with self._calling("download", key):
                response = self.client.get_object(Bucket=self.offsite.bucket, Key=key)
                digest, what = hashlib.sha256(), f"download {backup.path.name}"
                fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with (
                    os.fdopen(fd, "wb") as out,
                    self.progress.meter(what, response["ContentLength"]) as meter,
                ):
                    moved = _Bytes(meter)
                    for chunk in response["Body"].iter_chunks(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        moved(len(chunk))
            stored = {k.lower(): v for k, v in response.get("Metadata", {}).items()}
            remote = stored.get("sha256", integrity.recorded(backup.manifest))
            if not all(integrity.matches(backup.manifest, h) for h in (digest.hexdigest(), remote)):
                raise OffsiteError(
                    f"the off-site copy {self.offsite.url}{backup.path.name} does not match its "
                    "SHA-256: it is damaged or was changed. Nothing was restored or changed.\n→ "
                    "choose another backup (`invoke db.backups --remote`)"
                )
            write_private(manifest_path(local), json.dumps(backup.manifest))
            yield local

    @contextmanager
    def _calling(self, what: str, key: str) -> Iterator[None]:
        """botocore's errors as OffsiteError naming the step and object; botocore never puts
        credentials in its messages."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as Unreachable

        try:
            try:
                yield
            except S3UploadFailedError as exc:  # upload_file's wrapper around the real error
                raise exc.__context__ or exc from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "?"), error.get("Message", "")
            raise OffsiteError(
                f"{what} s3://{self.offsite.bucket}/{key} failed: {code} {message}".rstrip()
                + _remedy(str(code))
            ) from None
        except (Unreachable, HTTPClientError):  # their text holds request URLs and upload ids
            endpoint = redact_url(self.offsite.endpoint or self.client.meta.endpoint_url)
            raise OffsiteError(
                f"{what} s3://{self.offsite.bucket}/{key} failed: cannot reach the S3 endpoint "
                f"{endpoint} → check PGKURA_S3_ENDPOINT, this host's network access to it, and "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            ) from None
        except (BotoCoreError, S3UploadFailedError, OSError) as exc:
            raise OffsiteError(
                f"{what} s3://{self.offsite.bucket}/{key} failed: {exc}" + _remedy("")
            ) from None


def ship(
    offsite: Offsite, backup: Backup, policy: Policy, log: Log, progress: Reporter = QUIET
) -> str:
    """Copy a finished backup off-site, then apply `policy` there as well and clear what failed
    uploads left; its remote URL. On failure the local backup stays, and the error says so."""
    store = RemoteStore(offsite, progress=progress)
    try:
        store.upload(backup)
        url = offsite.url + backup.path.name
        log(f"off-site copy: {url}")
        database, mode = str(backup.manifest["database"]), str(backup.manifest["mode"])
        for name in store.prune(database, mode, policy):
            log(f"retention: removed the off-site copy {name}")
    except OffsiteError as exc:
        raise OffsiteError(f"the backup {backup.path} is complete and kept, but {exc}") from None
    try:
        for what in store.remove_leftovers(datetime.now(UTC) - LEFTOVER_GRACE):
            log(f"off-site: removed {what} (left by a failed upload)")
    except OffsiteError as exc:  # e.g. a key that may not list uploads: the copy is made
        log(f"warning: what failed uploads left in {offsite.url} stays: {exc}")
    return url


def configured(offsite: Offsite | None) -> Offsite:
    """The off-site location, or a clear error for --remote without one."""
    if offsite is None:
        raise OffsiteError(
            "no off-site location is configured\n→ set PGKURA_OFFSITE_URL=s3://bucket/prefix "
            "(and PGKURA_S3_ENDPOINT for providers other than AWS)"
        )
    return offsite


@contextmanager
def fetch(
    offsite: Offsite | None, spec: str, dbname: str, directory: Path,
    progress: Reporter = QUIET,
) -> Iterator[Path]:  # fmt: skip
    """A remote backup (`latest` of `dbname`, or a name) as a verified private local file."""
    store = RemoteStore(configured(offsite), progress=progress)
    with store.fetched(store.find(spec, dbname), directory) as path:
        yield path


def _remedy(code: str) -> str:
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
        return (
            "\n→ check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (environment or .env) and the "
            "key's permissions on the bucket"
        )
    if code in ("NoSuchBucket", "404"):
        return "\n→ check the bucket in PGKURA_OFFSITE_URL (pgkura does not create buckets)"
    return ""


def _client(offsite: Offsite) -> Any:
    import boto3
    from botocore.config import Config

    aws = offsite.aws
    session = boto3.session.Session(
        aws_access_key_id=aws.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=aws.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=aws.get("AWS_SESSION_TOKEN"),
        profile_name=aws.get("AWS_PROFILE"),
        region_name=aws.get("AWS_REGION") or aws.get("AWS_DEFAULT_REGION"),
    )
    # Other providers than AWS: path-style addressing works on all of them (MinIO needs it)
    style = "path" if offsite.endpoint else "auto"
    config = Config(
        s3={"addressing_style": style},
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    verify = str(offsite.ca_file) if offsite.ca_file else None  # None: the system's CAs
    return session.client("s3", endpoint_url=offsite.endpoint, config=config, verify=verify)
