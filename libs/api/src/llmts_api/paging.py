"""Bounds of every page parameter: an offset past ``MAX_OFFSET`` answers 422 (never an int64 overflow → 500)."""

from __future__ import annotations

MAX_OFFSET = 1_000_000
"""The largest ``offset`` any list accepts; deeper pages are reached by narrowing the filters."""

MAX_ITEM_INDEX = 10_000_000
"""The largest item index (``after`` of keyset pages); above any job's item count."""
