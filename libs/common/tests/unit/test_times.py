from datetime import UTC, datetime, timedelta, timezone

from llmts_common.times import iso_z


def test_aware_utc_ends_in_z() -> None:
    assert iso_z(datetime(2026, 12, 6, 23, 15, tzinfo=UTC)) == "2026-12-06T23:15:00Z"


def test_naive_is_taken_as_utc() -> None:
    assert iso_z(datetime(2026, 12, 6, 23, 15, 0, 123456)) == "2026-12-06T23:15:00.123456Z"


def test_other_offsets_are_converted_to_utc() -> None:
    moscow = timezone(timedelta(hours=3))
    assert iso_z(datetime(2026, 12, 7, 2, 15, tzinfo=moscow)) == "2026-12-06T23:15:00Z"
