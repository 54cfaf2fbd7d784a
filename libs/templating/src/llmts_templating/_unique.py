"""``unique`` rules across one job: the values already accepted, as (rule path, sha256) pairs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from llmts_templating._paths import _path_text, _resolve, parse_path
from llmts_templating._report import (
    _MISSING,
    ValidationIssue,
    _issue,
    content_hash,
)
from llmts_templating._rules import CompiledRule, CompiledRules


def _fingerprint(value: Any) -> str | None:
    try:
        return content_hash(value)
    except (TypeError, ValueError, RecursionError):
        return None


class UniqueState:
    """Values already accepted for ``unique`` rules in one job, as ``(rule path, sha256)`` pairs.

    :meth:`check` never records; call :meth:`commit` once the item is accepted (stored). Rebuild after a
    crash with :meth:`from_list` (a snapshot from :meth:`to_list`) or by committing the stored items.
    """

    def __init__(self, entries: Iterable[Sequence[str]] = ()) -> None:
        self._seen: dict[str, set[str]] = {}
        for key, digest in entries:
            self._seen.setdefault(str(key), set()).add(str(digest))

    @staticmethod
    def _key(path: str) -> str:
        return _path_text(parse_path(path))

    def contains(self, path: str, value: Any) -> bool:
        digest = _fingerprint(value)
        return digest is not None and digest in self._seen.get(self._key(path), ())

    def add(self, path: str, value: Any) -> None:
        digest = _fingerprint(value)
        if digest is not None:
            self._seen.setdefault(self._key(path), set()).add(digest)

    def _values(self, value: Any, rules: CompiledRules) -> Iterator[tuple[CompiledRule, str, Any, str]]:
        for compiled in rules.unique:
            for path, found in _resolve(value, compiled.steps):
                if found is _MISSING or found is None:
                    continue
                digest = _fingerprint(found)
                if digest is not None:
                    yield compiled, path, found, digest

    def check(self, value: Any, rules: CompiledRules) -> list[ValidationIssue]:
        """Duplicates of committed values, and duplicates inside ``value`` itself. Records nothing."""
        return list(_unique_issues(value, rules, self._seen))

    def commit(self, value: Any, rules: CompiledRules) -> None:
        """Record the unique values of an accepted item."""
        for compiled, _path, _found, digest in self._values(value, rules):
            self._seen.setdefault(compiled.key, set()).add(digest)

    def release(self, value: Any, rules: CompiledRules) -> None:
        """Forget the unique values of an item committed ahead (reserved while it was completed) that was not
        accepted after all: another item may have them again."""
        for compiled, _path, _found, digest in self._values(value, rules):
            self._seen.get(compiled.key, set()).discard(digest)

    def to_list(self) -> list[list[str]]:
        return [[key, digest] for key in sorted(self._seen) for digest in sorted(self._seen[key])]

    @classmethod
    def from_list(cls, entries: Iterable[Sequence[str]]) -> UniqueState:
        return cls(entries)

    def __len__(self) -> int:
        return sum(len(digests) for digests in self._seen.values())


def _unique_issues(
    value: Any, rules: CompiledRules, seen: Mapping[str, set[str]]
) -> Iterator[ValidationIssue]:
    local: dict[str, set[str]] = {}
    for compiled in rules.unique:
        for path, found in _resolve(value, compiled.steps):
            if found is _MISSING or found is None:
                continue
            digest = _fingerprint(found)
            if digest is None:
                continue
            bucket = local.setdefault(compiled.key, set())
            if digest in seen.get(compiled.key, ()):
                yield _issue(path, "unique", "duplicate: this value was already generated in this job", found)
            elif digest in bucket:
                yield _issue(path, "unique", "duplicate: the same value appears earlier in this item", found)
            bucket.add(digest)
