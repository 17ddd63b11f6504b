"""Backup file names for any database name, and what `latest` and retention choose."""

from __future__ import annotations

import json
import os
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.backups.store import (
    MANIFEST_FORMAT,
    SAFETY,
    Backup,
    BackupNotFound,
    BackupStore,
    file_stem,
    manifest_path,
)
from pgkura.retention import Policy
from tests.conftest import run_invoke

# what PostgreSQL accepts as a database name: 1-63 bytes, no NUL
db_names = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=63
).filter(lambda n: len(n.encode()) <= 63)


@given(db_names)
def test_any_database_name_gives_a_file_inside_the_directory(name):
    directory = Path("/srv/backups")
    for mode in ("full", "cluster"):
        path = BackupStore(directory).new_path(name, mode, datetime(2026, 1, 2, 3, 4, 5))
        assert path.parent == directory
        stem = file_stem(name, mode)
        assert "/" not in stem
        assert "\\" not in stem
        assert ".." not in stem
        assert not stem.startswith(".")
        assert all(ch.isprintable() and not ch.isspace() for ch in stem)
        # the manifest and the hidden temporary file still fit a 255-byte file name
        assert len(manifest_path(path).name.encode()) + len(".pgkura-XXXXXXXX.partial") < 255


@given(db_names, db_names)
def test_different_names_never_share_a_stem(a, b):
    if a != b:
        assert file_stem(a) != file_stem(b)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("app", "app"),
        ("日本語のDB", "日本語のDB"),
        ("my-app_2", "my-app_2"),
        ("a.b", "a.b"),
        ("../../x", "%2E.%2F%2E%2E%2Fx"),
        ("a/b", "a%2Fb"),
        ("..", "%2E."),
        ("a b", "a%20b"),
    ],
)
def test_stems_stay_readable(name, stem):
    assert file_stem(name) == stem


def _fake_backup(directory: Path, name: str, dbname: str, purpose: str = "backup") -> Path:
    path = directory / name
    path.write_bytes(b"")
    manifest = {"format": MANIFEST_FORMAT, "database": dbname, "mode": "full", "purpose": purpose}
    manifest_path(path).write_text(json.dumps(manifest))
    return path


def test_latest_skips_safety_copies_unless_asked(tmp_path):
    store = BackupStore(tmp_path)
    first = _fake_backup(tmp_path, "app_20260101_000000.sql.gz", "app")
    safety = _fake_backup(tmp_path, "app_20260102_000000.sql.gz", "app", SAFETY)
    assert store.latest("app") == first
    assert store.latest("app", safety=True) == safety
    assert store.resolve("latest", "app") == first
    with pytest.raises(BackupNotFound, match="no backups of database other"):
        store.latest("other")


def test_same_second_counter_orders_numerically(tmp_path):
    made = [_fake_backup(tmp_path, "app_20260101_000000.sql.gz", "app")]
    made += [_fake_backup(tmp_path, f"app_20260101_000000_{n}.sql.gz", "app") for n in (2, 10)]
    assert [e.path for e in BackupStore(tmp_path).own("app")] == made


def test_a_manifest_for_another_database_is_not_ours(tmp_path):
    # "x_cluster" full backups and "x" cluster backups share a stem; the manifest decides
    _fake_backup(tmp_path, "x_cluster_20260101_000000.sql.gz", "x_cluster")
    assert BackupStore(tmp_path).own("x", "cluster") == []
    assert len(BackupStore(tmp_path).own("x_cluster")) == 1


def test_prune_counts_each_purpose_and_zero_keeps_everything(tmp_path):
    store = BackupStore(tmp_path)
    ordinary = [_fake_backup(tmp_path, f"app_2026010{d}_000000.sql.gz", "app") for d in (1, 2, 3)]
    safety = [
        _fake_backup(tmp_path, f"app_2026010{d}_000000.sql.gz", "app", SAFETY) for d in (4, 5)
    ]
    foreign = tmp_path / "app_20250101_000000.sql.gz"
    foreign.write_bytes(b"no manifest: not ours")
    assert store.prune("app", "full", Policy()) == []
    assert store.prune("app", "full", Policy(last=1)) == [*ordinary[:2], safety[0]]
    assert foreign.exists()
    assert ordinary[2].exists()
    assert safety[1].exists()
    assert not manifest_path(ordinary[0]).exists()


def test_resolve_names_a_missing_file(tmp_path):
    with pytest.raises(BackupNotFound, match="does not exist"):
        BackupStore(tmp_path).resolve(str(tmp_path / "nope.sql.gz"), "app")


def test_readable_stem_alphabet_is_not_encoded():
    assert file_stem(string.ascii_letters + string.digits + "-_") == (
        string.ascii_letters + string.digits + "-_"
    )
    assert os.sep not in file_stem(os.sep * 3)


DAYS = [f"app_202611{d:02d}_030000.sql.gz" for d in range(10, 21)]  # 11 nightly backups


def _prune_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A backup directory of DAYS and a file that is not pgkura's, with a retention policy."""
    backups = tmp_path / "backups"
    backups.mkdir()
    for name in DAYS:
        _fake_backup(backups, name, "app")
    (backups / "app_20261101_030000.sql.gz").write_bytes(b"no manifest: not ours")
    return backups, {
        "PGKURA_ENV_FILE": str(tmp_path / ".env"),
        "PGKURA_BACKUP_DIR": str(backups),
        "PGKURA_BACKUP_KEEP": "2",
        "PGKURA_BACKUP_KEEP_DAILY": "0",
        "PGKURA_BACKUP_KEEP_WEEKLY": "2",
        # no server: the files are pruned regardless, the safety copies said to be unchecked
        "DATABASE_URL": f"postgresql://app@/app?host={tmp_path / 'no-server'}",
    }


def test_db_prune_lists_then_deletes_only_what_the_policy_drops(tmp_path):
    """`invoke db.prune`: a dry run by default, naming each file's fate and why."""
    backups, env = _prune_project(tmp_path)
    made, days = [backups / name for name in DAYS], DAYS
    foreign = backups / "app_20261101_030000.sql.gz"
    dry = run_invoke("db.prune", env=env, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "safety copies of app on the server: not checked" in dry.stderr
    assert "retention for app: 2 newest, 2 weekly" in dry.stdout
    assert "keep: one of the newest 2; weekly 2026-W47" in dry.stdout  # the 20th, a Friday
    assert "keep: weekly 2026-W46" in dry.stdout  # Sunday the 15th
    assert "dry run: 8 file(s) would be deleted" in dry.stdout
    assert all(p.exists() for p in made)
    done = run_invoke("db.prune", "--yes", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    left = sorted(p.name for p in backups.glob("*.sql.gz"))
    assert left == [foreign.name, days[5], days[9], days[10]]


def test_db_prune_json_is_the_plan_and_what_went(tmp_path):
    """`db.prune --json`: one document on stdout (messages stay on stderr) with each file's
    fate and why, the safety copies null when the server cannot be asked, and what went."""
    backups, env = _prune_project(tmp_path)
    dry = run_invoke("db.prune", "--json", env=env, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "safety copies of app on the server: not checked" in dry.stderr
    plan = json.loads(dry.stdout)
    assert set(plan) == {"database", "retention", "dry_run", "backups", "safety_copies",
                         "deleted", "dropped"}  # fmt: skip
    assert plan["database"] == "app"
    assert plan["retention"] == "2 newest, 2 weekly"
    assert plan["dry_run"] is True
    assert plan["safety_copies"] is None
    assert [b["file"] for b in plan["backups"]] == DAYS  # pgkura's own only, oldest first
    fates = {b["file"]: (b["purpose"], b["keep"], b["reasons"]) for b in plan["backups"]}
    assert fates[DAYS[10]] == ("backup", True, ["one of the newest 2", "weekly 2026-W47"])
    assert fates[DAYS[0]] == ("backup", False, [])
    assert plan["deleted"] == plan["dropped"] == []
    assert len(list(backups.glob("*.sql.gz"))) == 12

    done = json.loads(run_invoke("db.prune", "--yes", "--json", env=env, cwd=tmp_path).stdout)
    assert done["dry_run"] is False
    gone = [b["file"] for b in plan["backups"] if not b["keep"]]
    assert done["deleted"] == gone
    assert len(gone) == 8
    assert not any((backups / name).exists() for name in gone)


def test_a_summary_says_age_size_and_origin_from_the_manifest(tmp_path):
    """The restore prompt's facts; a file without a manifest says its origin is unknown."""
    path = tmp_path / "app_20261130_031500.sql.gz"
    path.write_bytes(b"x" * 2048)
    bare = Backup(path, {})
    assert bare.summary().endswith(", 2.0 KiB, no pgkura manifest: origin unknown")
    manifest = {"format": MANIFEST_FORMAT, "created_at": "2026-11-30T03:15:00+00:00",
                "database": "アプリ", "server_version": "18.6", "purpose": SAFETY,
                "reason": "before restoring app_20261129_031500.sql.gz"}  # fmt: skip
    now = datetime(2026, 11, 30, 6, 15, tzinfo=UTC)
    assert Backup(path, manifest).summary(now) == (
        "taken 3.0 h ago, 2.0 KiB, of database アプリ on PostgreSQL 18.6, a safety copy "
        "(before restoring app_20261129_031500.sql.gz)"
    )
