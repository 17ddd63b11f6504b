"""The text format as Prometheus reads it (prometheus-client's parser), for any label value a
database name can be; the textfile replaced atomically, with one clear error when it cannot."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from pgkura.errors import PgkuraError
from pgkura.metrics.exposition import Family, render, write_textfile


@given(
    database=st.text(min_size=1, max_size=40),
    value=st.floats(allow_nan=False) | st.integers(-(2**53), 2**53),
)
def test_any_label_value_and_number_reads_back(database, value):
    family = Family("pgkura_backup_files", "gauge", 'complete backups \\ "of" the\ndatabase')
    family.add(value, database=database)
    (parsed,) = text_string_to_metric_families(render([family]))
    assert parsed.type == "gauge"
    assert parsed.documentation == 'complete backups \\ "of" the\ndatabase'
    ((name, labels, read, *_),) = parsed.samples
    assert (name, labels) == ("pgkura_backup_files", {"database": database})
    assert read == float(value) or (math.isinf(value) and read == value)


def test_a_family_without_samples_is_left_out():
    empty, one = Family("pgkura_a", "gauge", "a"), Family("pgkura_b", "gauge", "b")
    one.add(1)
    assert render([empty, one]) == "# HELP pgkura_b b\n# TYPE pgkura_b gauge\npgkura_b 1\n"


def test_the_textfile_is_replaced_whole_and_readable_by_the_collector(tmp_path):
    path = tmp_path / "pgkura.prom"
    path.write_text("old\n")
    write_textfile(path, "pgkura_b 1\n")
    assert path.read_text() == "pgkura_b 1\n"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["pgkura.prom"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("pgkura.txt", "does not end in .prom"),
        ("missing/pgkura.prom", "cannot write the metrics file"),
        ("taken.prom", "cannot write the metrics file"),  # a directory stands there
    ],
)
def test_a_textfile_that_cannot_be_written_is_one_clear_error(tmp_path: Path, name, message):
    (tmp_path / "taken.prom").mkdir()
    with pytest.raises(PgkuraError, match=message):
        write_textfile(tmp_path / name, "pgkura_b 1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.prom"]  # no temporary left
