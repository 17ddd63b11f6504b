"""The COPY text the importer writes, and the checksum it compares PostgreSQL's output with."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pgkura.sqlite.schema import unchanged
from pgkura.sqlite.stream import Rows, checksum, text


def test_text_is_escaped_as_postgresql_escapes_its_copy_output():
    assert text("a\\b\tc\nd\re\bf\fg\vh 日本") == "a\\\\b\\tc\\nd\\re\\bf\\fg\\vh 日本"


@given(st.lists(st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))),
       st.integers(1, 7))  # fmt: skip
def test_the_checksum_of_what_was_sent_equals_that_of_the_same_rows_read_back(values, cut):
    """PostgreSQL's COPY output arrives in chunks that need not end with a row, and its rows in
    any order."""
    sent = Rows(["text"], [unchanged])
    data = b"".join(sent.blocks([(v,) for v in values], size=3))
    chunks = [data[i : i + cut] for i in range(0, len(data), cut)]
    assert checksum(["text"], chunks) == (sent.count, sent.total)
    backwards = b"".join(r + b"\n" for r in reversed(data.split(b"\n")[:-1]))
    assert checksum(["text"], [backwards]) == (sent.count, sent.total)


def test_json_is_compared_by_meaning_and_a_changed_value_is_not():
    sent = Rows(["jsonb", "bigint"], [unchanged, unchanged])
    list(sent.blocks([('{"b": 1,"a" :[2]}', 7)]))
    assert checksum(["jsonb", "bigint"], [b'{"a": [2], "b": 1}\t7\n']) == (1, sent.total)
    assert checksum(["jsonb", "bigint"], [b'{"a": [2], "b": 1}\t8\n']) != (1, sent.total)
