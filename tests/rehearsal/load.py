"""The application: threads that read and write through the published port with the app role
the whole time, recording every error with its SQLSTATE and the step it happened in."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Jsonb

from .data import SENTENCES, WORDS

CONNECTION_LOST = "connection"  # no SQLSTATE: the server closed or refused the connection


@dataclass(frozen=True)
class LoadError:
    step: str
    operation: str
    sqlstate: str
    message: str


@dataclass
class Load:
    """`workers` sessions doing one request after another (each statement its own transaction,
    as a web application's ORM in autocommit does); `pause()` quiesces them."""

    url: str
    workers: int = 2
    step: str = "setup"
    errors: list[LoadError] = field(default_factory=list)
    done: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _busy: list[threading.Lock] = field(default_factory=list)  # one per worker, held per request
    _connected: list[bool] = field(default_factory=list)
    _away: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._busy = [threading.Lock() for _ in range(self.workers)]
        self._connected = [False] * self.workers
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No request runs until the block ends (the workers wait at their next one)."""
        with ExitStack() as stack:
            for lock in self._busy:
                stack.enter_context(lock)
            yield

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The application stopped, as docs/backups.md asks before a restore: every worker closes its
        session and waits until the block ends."""
        self._away.set()
        try:
            while any(self._connected):
                time.sleep(0.1)
            yield
        finally:
            self._away.clear()

    @contextmanager
    def holding(self, table: str) -> Iterator[None]:
        """A session of the application in a long transaction that has read `table` (a report,
        say): it holds ACCESS SHARE on it until the block ends."""
        with psycopg.connect(self.url) as conn:
            conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (a fixed name)
            yield
            conn.rollback()

    def _work(self, n: int) -> None:
        rng = random.Random(n)  # noqa: S311 (test data, not secrets)
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            if self._away.is_set():
                if conn is not None:
                    conn.close()
                    conn = None
                self._connected[n] = False
                time.sleep(0.1)
                continue
            operation = rng.choice(OPERATIONS)
            with self._busy[n]:
                try:
                    if conn is None or conn.closed:
                        operation = connect
                        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
                        self._connected[n] = True
                    else:
                        operation(conn, rng)
                    self.done[operation.__name__] += 1
                except psycopg.Error as exc:
                    self.errors.append(
                        LoadError(self.step, operation.__name__, exc.sqlstate or CONNECTION_LOST,
                                  str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    )  # fmt: skip
                    if conn is not None and conn.broken:
                        conn = None
            if conn is None:
                time.sleep(0.5)  # reconnecting: not in a tight loop
            time.sleep(0.01)
        if conn is not None:
            conn.close()


def connect(conn: psycopg.Connection, rng: random.Random) -> None:
    """Stands for (re)connecting in the error records."""


def record_activity(conn: psycopg.Connection, rng: random.Random) -> None:
    conn.execute(
        "INSERT INTO activity (session_id, detail, note) VALUES (%s, %s, %s)",
        (rng.randint(1, 200), Jsonb({"page": f"/記事/{rng.randint(1, 999)}"}),
         rng.choice(SENTENCES)),
    )  # fmt: skip


def touch_session(conn: psycopg.Connection, rng: random.Random) -> None:
    conn.execute(
        "UPDATE app_sessions SET hits = hits + 1, last_seen = now() WHERE id = %s",
        (rng.randint(1, 200),),
    )


def search_text(conn: psycopg.Connection, rng: random.Random) -> None:
    conn.execute(
        "SELECT id, title FROM articles WHERE body LIKE likequery(%s) LIMIT 10",
        (rng.choice(WORDS),),
    ).fetchall()


def nearest(conn: psycopg.Connection, rng: random.Random) -> None:
    vector = "[" + ",".join(str(rng.random()) for _ in range(16)) + "]"
    conn.execute(
        "SELECT id FROM articles ORDER BY embedding <-> %s::vector LIMIT 10", (vector,)
    ).fetchall()


def account_events(conn: psycopg.Connection, rng: random.Random) -> None:
    conn.execute(
        "SELECT kind, count(*) FROM events WHERE account_id = %s AND created_at >= %s "
        "GROUP BY kind",
        (rng.randint(0, 4999), f"2025-{rng.randint(1, 12):02d}-01"),
    ).fetchall()


def read_file(conn: psycopg.Connection, rng: random.Random) -> None:
    conn.execute(
        "SELECT length(lo_get(file, 0, 65536)) FROM documents_files WHERE id = %s",
        (rng.randint(1, 4),),
    ).fetchall()


OPERATIONS = (record_activity, touch_session, search_text, nearest, account_events, read_file)
