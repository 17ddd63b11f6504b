"""Pings to a monitoring URL around a job (PGKURA_ALERT_URL), in the shape dead-man services
such as healthchecks.io use: `<url>/start` when it begins, `<url>` when it succeeds,
`<url>/fail` with the error when it fails. Failures are always sent; with
PGKURA_ALERT_SUCCESS=true the start and success pings are sent too, so that a job that stops
running at all (a cron line lost, a host down) is noticed as silence.

The URL holds the check's secret token: it is never printed, not even when a ping fails. The
body carries pgkura's own error message, which never contains a password.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Log = Callable[[str], None]
_TIMEOUT_S = 10
_BODY_MAX = 10_000  # healthchecks.io keeps the first 100 kB; a message never needs that much


def _ping(url: str, suffix: str, body: str, log: Log) -> None:
    import http.client
    import urllib.request  # only when an alert URL is set: 10 ms of every task's start-up

    request = urllib.request.Request(  # noqa: S310 (http(s) only: PGKURA_ALERT_URL's rule)
        url.rstrip("/") + suffix, data=body.encode()[:_BODY_MAX], method="POST"
    )
    request.add_header("Content-Type", "text/plain; charset=utf-8")
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:  # noqa: S310
            response.read()
    except (OSError, ValueError, http.client.HTTPException) as exc:  # texts may hold the URL
        reason = getattr(exc, "reason", None) or getattr(exc, "code", None) or type(exc).__name__
        log(f"warning: the alert ping to PGKURA_ALERT_URL{suffix or ''} failed ({reason})")


@contextmanager
def alerting(
    url: str | None, job: str, *, on_success: bool, log: Log, on_interrupt: bool = True
) -> Iterator[None]:
    """Ping around `job`; any failure (an interrupted run too, unless `on_interrupt` is False:
    the scheduler runs a job it cut off again, and alerts if that is cut off too) is sent with
    its message and then raised as before."""
    if url is None:
        yield
        return
    if on_success:
        _ping(url, "/start", f"{job} started", log)
    try:
        yield
    except Exception as exc:  # every failure alerts: pgkura's, the server's, the system's
        _ping(url, "/fail", f"{job} failed: {exc}", log)
        raise
    except KeyboardInterrupt:
        if on_interrupt:
            _ping(url, "/fail", f"{job} was interrupted", log)
        raise
    if on_success:
        _ping(url, "", f"{job} succeeded", log)
