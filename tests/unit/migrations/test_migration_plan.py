from datetime import UTC, datetime

import pytest

from pgkura.errors import MigrationError
from pgkura.migrations.files import discover
from pgkura.migrations.plan import Plan
from pgkura.migrations.version_table import AppliedRow


def row(version: int, name: str, checksum: str, how: str = "applied") -> AppliedRow:
    return AppliedRow(version, name, checksum, datetime(2026, 1, 1, tzinfo=UTC), 5, "app", how)


@pytest.fixture
def files(write_migration):
    write_migration("001_one.sql", "SELECT 1;")
    write_migration("002_two.sql", "SELECT 2;")
    write_migration("002_two.down.sql", "SELECT -2;")
    write_migration("003_three.sql", "SELECT 3;")
    return discover(write_migration.directory)


def applied(files, *versions, edit=()):
    by = {m.version: m for m in files}
    return {
        v: row(v, by[v].name if v in by else "gone", "x" if v in edit else by[v].up.checksum)
        for v in versions
    }


def test_states(files):
    plan = Plan(files, {**applied(files, 1, 3), 9: row(9, "gone", "abc")})
    states = {e.version: e.state for e in plan.entries()}
    assert states == {1: "applied", 2: "out-of-order", 3: "applied", 9: "missing"}


def test_changed_file_is_refused_with_the_repair_remedy(files):
    plan = Plan(files, applied(files, 1, edit=(1,)))
    with pytest.raises(MigrationError, match=r"001_one.sql changed.*invoke db.repair"):
        plan.check_integrity(allow_missing=False, allow_out_of_order=False)


def test_missing_and_out_of_order_can_be_overridden(files):
    plan = Plan(files, {**applied(files, 1, 3), 9: row(9, "gone", "abc")})
    with pytest.raises(MigrationError) as err:
        plan.check_integrity(allow_missing=False, allow_out_of_order=False)
    assert "--allow-missing" in str(err.value)
    assert "--allow-out-of-order" in str(err.value)
    plan.check_integrity(allow_missing=True, allow_out_of_order=True)


def test_to_apply_stops_at_the_target(files):
    plan = Plan(files, applied(files, 1))
    assert [m.version for m in plan.to_apply(2)] == [2]
    assert [m.version for m in plan.to_apply(None)] == [2, 3]
    with pytest.raises(MigrationError, match="no migration has that number"):
        plan.to_apply(7)


def test_rollback_refuses_before_anything_without_a_down_file(files):
    plan = Plan(files, applied(files, 1, 2, 3))
    with pytest.raises(MigrationError, match="003_three: it has no down file"):
        plan.to_roll_back(steps=2, to=None)
    plan = Plan(files, applied(files, 1, 2))
    assert [m.version for m, _ in plan.to_roll_back(None, None)] == [2]
    assert [m.version for m, _ in plan.to_roll_back(None, to=1)] == [2]
    with pytest.raises(MigrationError, match="not both"):
        plan.to_roll_back(1, 1)
