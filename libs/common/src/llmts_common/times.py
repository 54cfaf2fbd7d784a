"""The one timestamp format of every API answer and event stream: ISO 8601 in UTC ending in ``Z``
(``2026-12-06T23:15:00.123456Z``), the format pydantic already writes for aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_z(value: datetime) -> str:
    """``value`` in UTC as ISO 8601 ending in ``Z`` (a naive datetime is taken as UTC, as MongoDB returns them)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
