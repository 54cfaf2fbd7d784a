"""JSON merge patch (RFC 7396): what ``PATCH /templates/{id}`` applies to the current document.

An object patch merges key by key, recursively; ``null`` removes a key; any other value (arrays included)
replaces the target's value whole. A non-object patch replaces the whole target. Depth is bounded by the edge's
JSON-depth limit, so the recursion is too.
"""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` applied (neither is modified)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
