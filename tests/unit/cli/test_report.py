from pgkura.cli.report import table
from pgkura.units import age, size


def test_sizes_and_ages_read_naturally():
    assert [size(n) for n in (512, 2048, 5 * 2**20, 3 * 2**30)] == [
        "512 B", "2.0 KiB", "5.0 MiB", "3.0 GiB",
    ]  # fmt: skip
    assert [age(s) for s in (120, 7200, 3 * 86400)] == ["2 min", "2.0 h", "3.0 d"]


def test_table_pads_columns():
    assert table(["a", "long header"], [["xyz", "1"]]).splitlines() == [
        "a    long header",
        "---  -----------",
        "xyz  1",
    ]
