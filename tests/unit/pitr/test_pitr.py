"""Point-in-time recovery's pure parts: the settings, the compose file, the moment to restore to, what
`pgbackrest info` and pg_stat_archiver say and how doctor and db.backups word it."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.cli.output import Output
from pgkura.cli.pitr import show_base_backups
from pgkura.config.settings import load_settings
from pgkura.engines.chosen import engine_for
from pgkura.engines.docker.compose import PITR_FILE, compose_files
from pgkura.engines.docker.pgbackrest import (
    Archiver,
    BaseBackup,
    Gap,
    PitrError,
    archiving_finding,
    auto_kind,
    base_backup_finding,
    failure,
    find_gaps,
    gap_finding,
    hole_line,
    local,
    parse_info,
    require,
    window_line,
)
from pgkura.engines.lifecycle import up
from pgkura.errors import ConfigError, PgkuraError
from pgkura.pitr.restore import choose_backup, parse_moment
from pgkura.schedule.runner import jobs
from tests.conftest import ROOT, run_invoke

JST = timezone(timedelta(hours=9))
# `pgbackrest info --output=json` of pgBackRest 2.60 (one full backup; one that failed)
INFO = [{
    "archive": [{"id": "18-1", "max": "000000010000000000000003",
                 "min": "000000010000000000000001"}],
    "backup": [
        {"label": "20261130-200137F", "type": "full", "error": False,
         "database": {"id": 1, "repo-key": 1},
         "info": {"size": 23702099, "repository": {"size": 3081320}},
         "timestamp": {"start": 1796068897, "stop": 1796068906}},
        {"label": "20261130-210000F_20261130-210500I", "type": "incr", "error": True,
         "database": {"id": 1, "repo-key": 1},
         "info": {"size": 1, "repository": {"size": 1}},
         "timestamp": {"start": 1796072700, "stop": 1796072710}},
        # the same moment's backup in the off-site repository ended a little later
        {"label": "20261130-200140F", "type": "full", "error": False,
         "database": {"id": 1, "repo-key": 2},
         "info": {"size": 23702099, "repository": {"size": 3081320}},
         "timestamp": {"start": 1796068900, "stop": 1796068912}},
    ],
    "name": "pgkura", "status": {"code": 0, "message": "ok"},
}]  # fmt: skip


def settings_with(tmp_path, **env):
    # the Docker engine named, not guessed from whether this machine runs one
    return load_settings(tmp_path, {"POSTGRES_PASSWORD": "pw", "PGKURA_ENGINE": "docker", **env})


def test_pitr_is_off_by_default_and_its_file_added_only_when_on(tmp_path):
    off = settings_with(tmp_path)
    assert not off.pitr.enabled
    assert all(p.name != PITR_FILE for p in compose_files(off))
    on = settings_with(tmp_path, PGKURA_PITR="on", PGKURA_COMPOSE_PROJECT="shop")
    assert compose_files(on)[-1] == tmp_path / PITR_FILE
    assert (on.pitr.volume, on.pitr.stanza, on.pitr.keep_full) == ("shop_pgbackrest", "shop", 2)
    with pytest.raises(PitrError, match="point-in-time recovery is off"):
        require(off)


@pytest.mark.parametrize(
    ("name", "text"),
    [("PGKURA_PITR_QUEUE_MAX", "4G"), ("PGKURA_PITR_QUEUE_MAX", "0GiB"),
     ("PGKURA_PITR_KEEP_FULL", "0"), ("PGKURA_PITR_VOLUME", "a b"), ("PGKURA_PITR", "maybe")],
)  # fmt: skip
def test_bad_pitr_settings_fail_with_their_name(tmp_path, name, text):
    with pytest.raises(ConfigError, match=name):
        settings_with(tmp_path, **{name: text})


def test_the_compose_file_archives_through_pgbackrest_into_its_own_volume():
    text = (ROOT / PITR_FILE).read_text()
    assert "archive_command=pgbackrest archive-push %p" in text
    assert "PGBACKREST_ARCHIVE_PUSH_QUEUE_MAX: ${PGKURA_PITR_QUEUE_MAX" in text
    assert "pgbackrest:/var/lib/pgbackrest" in text


def test_the_embedded_engine_says_pitr_needs_the_image(tmp_path):
    embedded = settings_with(tmp_path, PGKURA_ENGINE="embedded", PGKURA_PITR="on")
    assert ("pitr", "fail") in [f[:2] for f in engine_for(embedded).describe()]
    with pytest.raises(PgkuraError, match="needs the Docker image"):
        up(embedded, log=print)
    with pytest.raises(PitrError, match="needs the Docker image"):
        require(embedded)
    plain = engine_for(settings_with(tmp_path, PGKURA_ENGINE="embedded"))
    assert "pitr" not in [f[0] for f in plain.describe()]


def test_to_time_needs_an_explicit_offset():
    assert parse_moment("2026-11-30 16:59:00+09:00") == datetime(2026, 11, 30, 7, 59, tzinfo=UTC)
    assert parse_moment("2026-11-30T07:59:00Z").tzinfo is not None
    with pytest.raises(PitrError, match="no UTC offset"):
        parse_moment("2026-11-30 16:59:00")
    with pytest.raises(PitrError, match="not a date and time"):
        parse_moment("yesterday at five")


@given(st.text(max_size=40))
def test_any_to_time_is_a_moment_with_an_offset_or_one_clear_error(text):
    try:
        moment = parse_moment(text)
    except PitrError:
        return
    assert moment.tzinfo is not None


def test_info_lists_usable_backups_oldest_first():
    found, status = parse_info(json.dumps(INFO))
    assert status == "ok"
    # the failed one is no backup; each repository's own are told apart
    assert [(b.label, b.where) for b in found] == [
        ("20261130-200137F", "local"), ("20261130-200140F", "off-site")]  # fmt: skip
    assert found[0].stopped == datetime.fromtimestamp(1796068906, UTC)
    assert found[0].stored == 3081320
    assert parse_info("[]") == ([], "no stanza")


def test_the_window_starts_where_the_oldest_backup_ended():
    found, _ = parse_info(json.dumps(INFO))
    line = window_line(found, datetime(2026, 11, 30, 21, 0, tzinfo=UTC))
    assert line.startswith("point-in-time recovery: can restore to any moment from ")
    assert found[0].stopped.astimezone().isoformat(sep=" ", timespec="seconds") in line
    assert "db.basebackup" in window_line([], None)


def archiver(**changes):
    base = {"archived_wal": "000000020000000000000010", "archived_at": datetime(2026, 11, 30, 8, tzinfo=UTC),
            "failed_count": 0, "failed_wal": None, "failed_at": None,
            "current_wal": "000000020000000000000011", "segment_bytes": 16 * 2**20,
            "now": datetime(2026, 11, 30, 8, 5, tzinfo=UTC)}  # fmt: skip
    return Archiver(**{**base, **changes})


def test_archiving_that_works_is_ok():
    level, detail = archiving_finding(archiver())
    assert level == "ok"
    assert "5 min ago" in detail
    assert "0 completed segment(s) waiting" in detail


def test_a_server_started_before_pitr_was_turned_on_fails():
    level, detail = archiving_finding(archiver(mode="off"))
    assert level == "fail"
    assert "invoke db.up" in detail


def test_archiving_failing_since_the_last_success_fails():
    after = datetime(2026, 11, 30, 8, 1, tzinfo=UTC)
    level, detail = archiving_finding(archiver(failed_count=3, failed_wal="000000020000000000000011", failed_at=after))  # fmt: skip
    assert level == "fail"
    assert "000000020000000000000011" in detail
    # an old failure, followed by successes, is history
    earlier = datetime(2026, 11, 30, 7, tzinfo=UTC)
    assert archiving_finding(archiver(failed_count=3, failed_at=earlier))[0] == "ok"


def test_segments_waiting_are_counted_across_log_files():
    lagging = archiver(
        archived_wal="0000000200000000000000FD", current_wal="00000002000000010000000A"
    )
    assert lagging.waiting == 2 + 10  # FE, FF, then 00..09 of the next log file
    assert archiving_finding(lagging)[0] == "warn"
    assert archiver(archived_wal="00000002.history").waiting is None
    assert archiver(archived_wal="000000010000000000000010").waiting is None  # other timeline


def test_newest_base_backup_age():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    fresh = BaseBackup("L", "incr", now - timedelta(hours=2), now - timedelta(hours=1), 1, 1)
    stale = BaseBackup("L", "full", now - timedelta(days=4), now - timedelta(days=3), 1, 1)
    assert base_backup_finding([fresh], now)[0] == "ok"
    assert base_backup_finding([stale], now)[0] == "warn"
    assert base_backup_finding([], now)[0] == "fail"
    # with the off-site repository: one without a base backup fails, named
    level, detail = base_backup_finding([fresh], now, (1, 2))
    assert (level, detail.split("; ")[1][:30]) == ("fail", "none in the off-site repositor")
    offsite = BaseBackup("R", "full", now - timedelta(hours=2), now - timedelta(hours=1), 1, 1, 2)
    assert base_backup_finding([fresh, offsite], now, (1, 2))[0] == "ok"


@pytest.mark.parametrize(
    ("code", "remedy"),
    [(28, "another cluster's backups"), (87, "db.up` recreates"), (127, "no pgBackRest"),
     (99, "see pgBackRest's message")],
)  # fmt: skip
def test_pgbackrest_failures_are_named_by_their_code_with_a_remedy(code, remedy):
    said = "ERROR: [028]: backup and archive info files exist but do not match the database"
    error = failure("creating the stanza", subprocess.CompletedProcess([], code, "", said))
    assert said in str(error)
    assert remedy in str(error)


def test_auto_takes_a_full_weekly_and_differentials_between():
    now = datetime(2026, 12, 1, tzinfo=UTC)

    def backup(kind, days):
        return BaseBackup("L", kind, now - timedelta(days=days), now - timedelta(days=days), 1, 1)

    assert auto_kind([], now) == "full"
    assert auto_kind([backup("full", 2), backup("diff", 1)], now) == "diff"
    assert auto_kind([backup("full", 8), backup("diff", 1)], now) == "full"


def test_the_scheduler_runs_base_backups_on_their_own_schedule(tmp_path):
    scheduled = jobs(settings_with(tmp_path, PGKURA_PITR="on", PGKURA_PITR_SCHEDULE="daily 02:30"))
    assert [(j.name, j.argv) for j in scheduled] == [
        ("base backup", ["db.basebackup", "--type", "auto"])
    ]
    assert jobs(settings_with(tmp_path, PGKURA_PITR="on")) == []
    # the restore drills: the dumps' and, with PITR, the WAL archive's
    drills = jobs(settings_with(tmp_path, PGKURA_PITR="on", PGKURA_DRILL_SCHEDULE="daily 04:00"))
    assert [j.argv[0] for j in drills] == ["db.verify", "db.pitr-drill"]
    assert [j.name for j in jobs(settings_with(tmp_path, PGKURA_DRILL_SCHEDULE="daily"))] == [
        "drill"
    ]


def test_restore_and_restore_to_keep_their_positional_arguments(tmp_path):
    """invoke cannot leave a positional argument out, so the moment is restore-to's own and
    `db.restore latest` stays as it was."""
    env = {"PGKURA_ENV_FILE": str(tmp_path / ".env"), "PGKURA_BACKUP_DIR": str(tmp_path),
           "PGKURA_ENGINE": "docker"}  # fmt: skip
    latest = run_invoke("db.restore", "latest", "--yes", env=env, cwd=tmp_path)
    assert "No idea what" not in latest.stderr
    assert "no backups" in latest.stderr
    off = run_invoke("db.restore-to", "2026-11-30 16:59:00+09:00", "--yes", env=env, cwd=tmp_path)
    assert off.returncode == 1
    assert "point-in-time recovery is off" in off.stderr


@pytest.mark.parametrize("name", ["DATABASE_URL", "PGKURA_MIGRATION_URL"])
def test_pitr_refuses_a_server_named_by_url_direct_or_not(tmp_path, name):
    """pgkura's tasks reach PGKURA_MIGRATION_URL's server when it is set: pgBackRest in the
    project's container would archive one server while the drill marks another."""
    url = settings_with(tmp_path, PGKURA_PITR="on", **{name: "postgresql://app:pw@db.example/app"})
    with pytest.raises(PitrError, match=f"not {name}'s server") as refused:
        require(url)
    assert "pw@" not in str(refused.value)


def repo_ls(*names: str, time: int = 1796068900) -> str:
    """`pgbackrest repo-ls --recurse --output=json archive/<stanza>` as pgBackRest 2.60 prints it."""
    listing: dict[str, dict] = {".": {"type": "path"}, "18-1": {"type": "path"}}
    for i, name in enumerate(names):
        listing[f"18-1/{name[:16]}/{name}-0a1b2c.gz"] = {
            "type": "file",
            "size": 9,
            "time": time + i,
        }
    return json.dumps(listing)


def base(label: str, start: str, stopped: int, repo: int = 1) -> BaseBackup:
    return BaseBackup(label, "full", datetime.fromtimestamp(stopped - 5, UTC),
                      datetime.fromtimestamp(stopped, UTC), 1, 1, repo, start)  # fmt: skip


def segment(timeline: int, number: int) -> str:
    return f"{timeline:08X}{number // 256:08X}{number % 256:08X}"


def test_wal_dropped_between_segments_is_a_gap_until_a_later_base_backup():
    # 4..6 dropped on timeline 1; log 0's last segment (0xFF) then log 1 is contiguous;
    # timeline 2 starts at its switch segment; a hole before any base backup is no gap
    held = [segment(1, n) for n in (0, 2, 3, 7, 8, 0xFF, 0x100)]
    held += [segment(2, 0x100), segment(2, 0x101)]
    listing = json.loads(repo_ls(*held))
    listing["18-1/0000000100000000/000000010000000000000009.partial-0a1b2c.gz"] = {
        "type": "file",
        "size": 1,
        "time": 1,
    }
    listing["18-1/00000002.history"] = {"type": "file", "size": 1, "time": 1}
    listing = json.dumps(listing)
    early = base("F1", segment(1, 2), 1796068000)
    gaps = find_gaps(listing, [early], repo=1)
    assert [(g.first, g.last) for g in gaps] == [(segment(1, 4), segment(1, 6)),
                                                 (segment(1, 9), segment(1, 0xFE))]  # fmt: skip
    assert gaps[0].since == datetime.fromtimestamp(1796068900 + 2, UTC)  # when 3 arrived
    assert gaps[0].until is None
    level, detail = gap_finding(gaps)
    assert level == "fail"
    assert "WAL dropped or never archived" in detail
    assert "restores to a time between" in detail
    assert "take a full base backup: `invoke db.basebackup --type full`" in detail
    # another repository's backup covers nothing here; a later one of this repository does
    assert (
        find_gaps(listing, [early, base("F2", segment(1, 0x100), 1796069999, repo=2)], 1)[0].until
        is None
    )
    later = base("F2", segment(2, 0x101), 1796069999)
    covered = find_gaps(listing, [early, later], repo=1)
    assert all(g.until == later.stopped for g in covered)
    level, detail = gap_finding(covered)
    assert level == "ok"
    assert "a later base backup restores past it" in detail
    assert gap_finding([])[0] == "ok"
    # no base backup before the hole: no restore replays through it
    assert find_gaps(listing, [later], repo=1) == []


def test_info_keeps_where_each_backup_starts_replaying():
    info = json.loads(json.dumps(INFO))
    info[0]["backup"][0]["archive"] = {
        "start": "000000010000000000000002",
        "stop": "000000010000000000000002",
    }
    found, _ = parse_info(json.dumps(info))
    assert found[0].wal_start == "000000010000000000000002"
    assert found[1].wal_start == ""


def test_a_restore_follows_the_live_timeline_not_the_newest_in_the_archive():
    from pgkura.engines.docker.pgbackrest import BaseBackup
    from pgkura.pitr.restore import along

    at = datetime(2026, 12, 1, tzinfo=UTC)
    on_2 = BaseBackup(
        "20261201-000000F", "full", at, at, 1, 1, wal_start="000000020000000000000005"
    )
    assert along(None, on_2) == []  # the server is down: pgBackRest's default, the newest
    assert along(2, on_2) == ["--target-timeline=current"]  # no history file needed
    assert along(3, on_2) == ["--target-timeline=3"]  # across a switch: named


def hole(repo: int, since: int, until: int | None) -> Gap:
    return Gap(repo, segment(1, 4), segment(1, 6), datetime.fromtimestamp(since, UTC),
               datetime.fromtimestamp(until, UTC) if until else None)  # fmt: skip


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def test_a_hole_covers_the_moments_between_its_last_wal_and_the_next_base_backup():
    closed, open_ = hole(1, 2000, 3000), hole(1, 2000, None)
    assert [closed.covers(at(t)) for t in (1999, 2000, 2001, 2999, 3000)] == [
        False, False, True, True, False]  # fmt: skip
    assert open_.covers(at(10**10))


def test_the_window_names_each_hole_as_text_and_as_facts():
    facts = hole(2, 2000, None).facts()
    assert facts == {"repository": "off-site", "from": at(2000), "to": None,
                     "first_missing": segment(1, 4), "last_missing": segment(1, 6)}  # fmt: skip
    line = hole_line(facts)
    assert line.startswith(f"cannot reach {local(at(2000))} … now: WAL dropped (")
    assert "missing in the off-site repository" in line
    stream = io.StringIO()
    facts_of_backups = {"problem": None, "base_backups": [], "stanza": "ok",
                        "window": "point-in-time recovery: can restore to any moment from …",
                        "gaps": [hole(1, 2000, 3000).facts()], "gaps_problem": None}  # fmt: skip
    show_base_backups(facts_of_backups, Output(stream))
    assert f"  cannot reach {local(at(2000))} … {local(at(3000))}: WAL dropped" in stream.getvalue()


def test_restore_to_takes_the_newest_backup_before_the_moment_outside_any_hole():
    local_, offsite = base("L", segment(1, 2), 1000), base("O", segment(1, 2), 1010, repo=2)
    later = base("L2", segment(1, 8), 3000)
    found = [local_, offsite, later]
    assert choose_backup(found, [], at(2500)) is local_
    # the local repository lacks WAL the off-site one holds: the off-site backup is taken
    assert choose_backup(found, [hole(1, 2000, 3000)], at(2500)) is offsite
    # past the hole, the backup that ended after it
    assert choose_backup(found, [hole(1, 2000, 3000), hole(2, 2000, None)], at(3500)) is later
    assert choose_backup(found, [hole(1, 2000, 3000)], at(2000)) is local_


def test_restore_to_refuses_a_moment_in_a_hole_naming_it_and_the_nearest_moments():
    found = [base("L", segment(1, 2), 1000), base("O", segment(1, 2), 1010, repo=2)]
    with pytest.raises(PitrError) as refused:
        choose_backup(found, [hole(1, 2000, 3000), hole(2, 2100, 2900)], at(2500))
    first, second = str(refused.value).splitlines()
    assert first.startswith(f"{local(at(2500))} is inside a hole of the WAL archive: cannot reach")
    assert second == (f"→ the nearest moments a restore reaches: up to {local(at(2100))}, "
                      f"and from {local(at(2900))} on")  # fmt: skip
    with pytest.raises(PitrError, match="none after it until a new base backup"):
        choose_backup(found[:1], [hole(1, 2000, None)], at(2500))
    with pytest.raises(PitrError, match="no base backup ended before"):
        choose_backup(found, [], at(500))
