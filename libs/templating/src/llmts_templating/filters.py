"""Custom Jinja filters for prompts: ``translit``, ``slug``, ``pick`` and a plain-text ``tojson``.

They are plain functions so the generator and the templates service can use them outside Jinja too
(e.g. for file names or task keys).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["pick", "slug", "tojson", "translit", "translit_letters"]

# Russian Cyrillic -> Latin, the table llm-data-gen uses (lib/promptBuilder.js `_transliterate`).
# fmt: off
_RU_TO_LATIN: dict[str, str] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sch",
    "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
}
# fmt: on
_RU_TO_LATIN.update({k.upper(): v.capitalize() for k, v in list(_RU_TO_LATIN.items())})

# llm-data-gen maps with `map[char] || char`, so the two letters that map to "" (ъ, ь) are kept and then
# replaced by "_" like any other non-ASCII character. `translit` reproduces that on purpose (task keys and
# file names of imported configs stay identical); `translit_letters`/`slug` drop them instead.
_COMPAT_TABLE = str.maketrans({k: v for k, v in _RU_TO_LATIN.items() if v})
_LETTERS_TABLE = str.maketrans(_RU_TO_LATIN)
_NON_ALNUM = re.compile(r"[^a-zA-Z0-9]")
_UNDERSCORES = re.compile(r"_+")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


def translit(value: Any) -> str:
    """Cyrillic -> Latin exactly as llm-data-gen's ``{x_translit}``: map letters, every other
    non-ASCII-alphanumeric character -> ``_``, collapse runs of ``_``, lowercase.

    ``"PC игры"`` -> ``"pc_igry"``. Empty/``None`` -> ``""``; numbers are converted with ``str``.
    """
    if value is None or value == "":
        return ""
    text = value if isinstance(value, str) else str(value)
    mapped = text.translate(_COMPAT_TABLE)
    return _UNDERSCORES.sub("_", _NON_ALNUM.sub("_", mapped)).lower()


def translit_letters(value: Any) -> str:
    """Cyrillic -> Latin letters only, everything else kept (``"Съезд, 2024"`` -> ``"Sezd, 2024"``)."""
    text = "" if value is None else (value if isinstance(value, str) else str(value))
    return text.translate(_LETTERS_TABLE)


def slug(value: Any, sep: str = "-") -> str:
    """URL/file-name slug: transliterate Cyrillic, strip accents, lowercase, runs of anything that is
    not ``[a-z0-9]`` -> ``sep``, trimmed. ``"Привет, Мир!"`` -> ``"privet-mir"``."""
    text = translit_letters(value)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return _SLUG_JUNK.sub(sep, ascii_text).strip(sep) if sep else _SLUG_JUNK.sub("", ascii_text)


def pick(items: Any, index: int, salt: str | None = None) -> Any:
    """Deterministic choice from ``items`` by ``index``: ``items[index % len(items)]``.

    With ``salt`` the position is ``sha256(f"{salt}:{index}") % len(items)`` instead, so two ``pick``s
    over lists of the same length are not correlated. A mapping picks among its keys (insertion order).
    """
    if isinstance(items, Mapping):
        seq: Sequence[Any] = list(items.keys())
    elif isinstance(items, Sequence) and not isinstance(items, str | bytes):
        seq = items
    else:
        raise TypeError(f"pick expects a list, got {type(items).__name__}")
    if not seq:
        raise ValueError("pick from an empty list")
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"pick index must be an integer, got {type(index).__name__}")
    if salt is None:
        return seq[index % len(seq)]
    digest = hashlib.sha256(f"{salt}:{index}".encode()).digest()
    return seq[int.from_bytes(digest[:8], "big") % len(seq)]


def tojson(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    """JSON for prompts: UTF-8 text kept as is (``ensure_ascii=False``), no HTML escaping."""
    if indent is not None and not 0 <= indent <= 16:
        raise ValueError("tojson indent must be between 0 and 16")
    return json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys, allow_nan=False)
