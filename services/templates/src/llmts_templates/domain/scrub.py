"""Secret-looking fields removed from imported configuration before it is stored (issue 14 finding 11).

An llm-data-gen config carries its API settings, and people put credentials there in many spellings
(``apiKey``, ``api_key``, ``headers.Authorization``, ``accessToken``, ``password`` …). What an import keeps in
``metadata`` becomes readable by everyone once the template is public, so the import removes, at any depth:

- every key that looks like a secret (case-insensitive: ``api[_-]?key``, ``token`` (not ``maxTokens``),
  ``secret``, ``passw…``, ``passphrase``, ``authoriz…``, ``auth``, ``cookie``, ``credential``,
  ``private[_-]?key``, ``session[_-]?id``, ``signature``, ``bearer``);
- every entry under a ``headers`` mapping (header values are credentials more often than not);
- every string value that looks like a credential whatever its key (``Bearer …``/``Basic …``, ``sk-…``
  provider keys, GitHub/Slack tokens, JWTs).

Each removed field is reported by its dotted path (``api.headers.Authorization``); the value never is.
"""

from __future__ import annotations

import re
from typing import Any

_SECRET_KEY = re.compile(
    r"api[_-]?key|token|secret|passw|passphrase|authoriz|^auth$|^x-auth|cookie|credential|private[_-]?key"
    r"|session[_-]?id|signature|bearer",
    re.IGNORECASE,
)
_NOT_SECRET_KEY = re.compile(r"^(max|min)[_-]?tokens?$|^tokens?[_-]?(limit|count)$", re.IGNORECASE)
_SECRET_VALUE = re.compile(
    r"^\s*(?:(?:bearer|basic)\s+\S|sk-[A-Za-z0-9_-]{12,}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.)",
    re.IGNORECASE,
)


def secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _NOT_SECRET_KEY.match(key)


def _child(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def scrub_secrets(value: Any, path: str, removed: list[str], *, headers: bool = False) -> Any:
    """``value`` without its secret-looking fields (a copy); their paths are appended to ``removed``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = _child(path, key)
            if headers or secret_key(str(key)):
                removed.append(where)
                continue
            kept = scrub_secrets(item, where, removed, headers=str(key).lower() == "headers")
            if kept is not _REMOVED:
                out[key] = kept
        return out
    if isinstance(value, list):
        items = [scrub_secrets(v, _child(path, i), removed) for i, v in enumerate(value)]
        return [v for v in items if v is not _REMOVED]
    if isinstance(value, str) and _SECRET_VALUE.match(value):
        removed.append(path)
        return _REMOVED
    return value


_REMOVED: Any = object()
