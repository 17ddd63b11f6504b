import pytest

from pgkura.durations import parse_ms, render_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [("5s", 5000), ("500ms", 500), ("2min", 120_000), ("1h", 3_600_000), ("3", 3000), ("0", 0)],
)
def test_parse(text, ms):
    assert parse_ms(text) == ms


@pytest.mark.parametrize("text", ["", "fast", "5 parsecs", "-1s"])
def test_parse_rejects(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_ms(text)


def test_render():
    assert [render_ms(v) for v in (0, 250, 5000, 120_000)] == ["0 (none)", "250ms", "5s", "2min"]
