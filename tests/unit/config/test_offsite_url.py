"""PGKURA_OFFSITE_URL as people type it: s3://bucket, with or without a prefix and slashes;
the progress line of transfers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.config.offsite import parse_s3_url

BUCKETS = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True)
PARTS = st.lists(st.from_regex(r"[A-Za-z0-9_=-]{1,12}", fullmatch=True), max_size=4)


@given(BUCKETS, PARTS, st.booleans(), st.booleans())
def test_any_bucket_and_prefix_round_trip(bucket, parts, leading, trailing):
    prefix = "/".join(parts)
    text = f"s3://{bucket}/" + ("/" if leading and prefix else "") + prefix
    text += "/" if trailing and prefix else ""
    assert parse_s3_url(text) == (bucket, prefix + "/" if prefix else "")


@given(st.text(max_size=40))
def test_anything_else_is_a_clear_value_error_never_a_crash(text):
    try:
        bucket, prefix = parse_s3_url(text)
    except ValueError as exc:
        message = str(exc)
    else:
        message = "s3://bucket/prefix"
        assert text.startswith("s3://")
        assert 3 <= len(bucket) <= 63
        assert prefix == "" or prefix.endswith("/")
    assert "s3://bucket/prefix" in message


@pytest.mark.parametrize(
    "text", ["s3://", "s3://ab", "S3://bucket", "s3://bucket/a//x", "s3://b_c"]
)
def test_near_misses_are_refused(text):
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        parse_s3_url(text)
