"""Regular expressions with a time bound, for user-written ``pattern`` rules and JSON Schema patterns.

Decision (see README): a pattern is compiled with RE2 (``google-re2``), whose matching is linear in
the input, so ``^(a+)+$`` cannot backtrack catastrophically. If RE2 rejects the pattern because it
uses a feature RE2 does not have (lookahead/lookbehind, backreferences, atomic groups, possessive
quantifiers, ``\\Z``…), the pattern is compiled with the ``regex`` module instead and every match runs
with a timeout (``PatternTimeoutError``, reported as a failed check, never as a pass). If RE2 rejects it
for size (huge counted repetitions such as ``(a{1000}){1000}``) the pattern is refused as unsafe, and a
pattern neither engine accepts is refused as invalid.

Matching is a *search* (unanchored, like JSON Schema ``pattern``): use ``^…$`` to match whole values.
In RE2, ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII-only; use ``\\p{L}``, ``\\p{Cyrillic}`` or explicit
ranges (``[А-Яа-яЁё]``) for other scripts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

import re2
import regex  # type: ignore[import-untyped]

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_PATTERN_LENGTH",
    "BoundedPattern",
    "PatternError",
    "PatternTimeoutError",
    "compile_pattern",
]

MAX_PATTERN_LENGTH = 2000
DEFAULT_TIMEOUT_S = 0.05
_RE2_MAX_MEM = 8 << 20

# RE2 messages meaning "this syntax is not supported" (the fallback engine may run it)
_UNSUPPORTED = ("invalid perl operator", "invalid escape sequence", "invalid named capture group")


class PatternError(ValueError):
    """``reason``: ``invalid`` (no engine compiles it), ``unsafe`` (too large/too long)."""

    def __init__(self, reason: Literal["invalid", "unsafe"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PatternTimeoutError(TimeoutError):
    pass


@dataclass(frozen=True)
class BoundedPattern:
    pattern: str
    engine: Literal["re2", "regex"]
    timeout: float
    _compiled: Any = field(repr=False, compare=False)

    def search(self, text: str) -> bool:
        """True if the pattern occurs in ``text``; raises :class:`PatternTimeoutError`."""
        if self.engine == "re2":
            return self._compiled.search(text) is not None
        try:
            return self._compiled.search(text, timeout=self.timeout) is not None
        except TimeoutError as exc:
            raise PatternTimeoutError(
                f"pattern {self.pattern!r} took longer than {self.timeout:g} s"
            ) from exc


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _RE2_MAX_MEM
    return options


_OPTIONS = _re2_options()


def _error_text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str, timeout: float = DEFAULT_TIMEOUT_S) -> BoundedPattern:
    """Compile ``pattern`` (cached); raises :class:`PatternError`."""
    if not isinstance(pattern, str):
        raise PatternError("invalid", "a pattern must be a string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError("unsafe", f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return BoundedPattern(pattern, "re2", timeout, re2.compile(pattern, _OPTIONS))
    except Exception as exc:
        re2_error = _error_text(exc)
    try:
        compiled = regex.compile(pattern, flags=regex.VERSION0)
    except Exception as exc:
        raise PatternError("invalid", f"invalid regular expression: {_error_text(exc)}") from None
    if not any(marker in re2_error for marker in _UNSUPPORTED):
        raise PatternError("unsafe", f"pattern refused as unsafe ({re2_error})")
    return BoundedPattern(pattern, "regex", timeout, compiled)
