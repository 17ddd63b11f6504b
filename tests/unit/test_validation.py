"""Flags and settings share one definition of each value: they accept and refuse alike."""

from __future__ import annotations

import re
import subprocess
from operator import attrgetter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura import validation as v
from pgkura.backups.take import BackupOptions
from pgkura.config.settings import load_settings
from pgkura.errors import ConfigError
from pgkura.migrations.operations import MigrateOptions
from tests.conftest import INVOKE, ROOT

flag_texts = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.text(max_size=8),
    st.sampled_from(["0", "1", "9", "10", "-1", " 3 ", "1e3", "0x5", "\uff16", "007"]),
)


def _outcome(call):
    try:
        return ("ok", call())
    except ConfigError as exc:
        # the same words after the name and where it came from
        return ("error", str(exc).split(" is invalid: ", 1)[1])


@pytest.mark.parametrize(
    ("variable", "flag", "rule", "attribute"),
    [
        ("PGKURA_BACKUP_LEVEL", "level", v.GZIP_LEVEL, "backup_level"),
        ("PGKURA_BACKUP_KEEP", "keep", v.KEEP, "backup_retention.last"),
        ("PGKURA_BACKUP_COMPRESSION", "compression", v.COMPRESSION, "backup_compression"),
    ],
)
@given(text=st.one_of(flag_texts, st.sampled_from(["gzip", "zstd", "ZSTD", " gzip ", "lz4"])))
def test_a_flag_and_its_setting_never_disagree(tmp_path_factory, variable, flag, rule, attribute,
                                               text):  # fmt: skip
    if not text.strip():
        return  # an empty setting means "the default"; an empty flag is no value at all
    root = tmp_path_factory.getbasetemp()
    from_env = _outcome(lambda: attrgetter(attribute)(load_settings(root, {variable: text})))
    from_flag = _outcome(lambda: getattr(BackupOptions.from_flags(**{flag: text}), flag))
    assert from_env == from_flag


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"keep": "-1"}, "--keep='-1' from the command line is invalid"),
        (
            {"level": "10"},
            "--level='10' from the command line is invalid: expected a compression level",
        ),
        ({"level": "0"}, "--level='0' from the command line is invalid"),
        (
            {"compression": "lz4"},
            "--compression='lz4' from the command line is invalid: expected gzip or zstd",
        ),
        ({"schema_only": True, "cluster": True}, "choose one of"),
    ],
)
def test_bad_backup_flags_are_refused_before_anything_runs(flags, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        BackupOptions.from_flags(**flags)


def test_migrate_to_must_be_a_version():
    with pytest.raises(ConfigError, match="--to='x'"):
        MigrateOptions.from_flags(to="x")
    assert MigrateOptions.from_flags(to="12").to == 12


def test_secret_rules_never_echo_the_value():
    with pytest.raises(ConfigError) as err:
        v.Rule(int, "a number", secret=True).check("hunter2-xyz", name="X", where="here")
    assert "hunter2-xyz" not in str(err.value)


@pytest.mark.parametrize(
    ("task", "long_flags"),
    [
        ("db.down", ["--force", "--yes", "--volumes"]),
        ("db.reset", ["--force", "--yes"]),
        ("db.restore", ["--yes", "--create"]),
        ("db.migrate", ["--allow-out-of-order", "--allow-missing"]),
        ("db.rollback", ["--yes"]),
    ],
)
def test_destructive_flags_have_no_one_letter_alias(task, long_flags):
    out = subprocess.run(
        [*INVOKE, "--help", task], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    for flag in long_flags:
        line = next(line for line in out.splitlines() if flag in line)
        assert not re.search(r"(^|\s)-[a-zA-Z](,|\s)", line), line


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_a_typed_path_is_absolute_or_explained(text):
    """`~name` of a user the machine lacks once ended tasks with a traceback."""
    path, failure = None, ""
    try:
        path = v.project_path(text, Path("/project"))
    except ValueError as exc:
        failure = str(exc)
    if path is None:
        assert text.startswith("~")
        assert "is not a known home directory" in failure
    else:
        assert path.is_absolute()


def test_an_unknown_home_directory_is_a_clear_error_for_settings_and_flags(tmp_path):
    with pytest.raises(ConfigError, match="~nosuchuser-pgkura is not a known home directory"):
        load_settings(tmp_path, {"PGKURA_BACKUP_DIR": "~nosuchuser-pgkura/backups"})
    with pytest.raises(ConfigError, match=r"--output='~nosuchuser-pgkura/x' .* not a known home"):
        v.FILE_PATH.flag("~nosuchuser-pgkura/x", "--output")
