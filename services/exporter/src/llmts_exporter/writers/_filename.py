"""Download filenames: an ASCII fallback and an RFC 5987 ``filename*`` value."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from urllib.parse import quote

_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґ",
        [
            *("a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s"),
            *(
                "t",
                "u",
                "f",
                "kh",
                "ts",
                "ch",
                "sh",
                "shch",
                "_",
                "y",
                "_",
                "e",
                "yu",
                "ya",
                "i",
                "yi",
                "ye",
                "g",
            ),
        ],
        strict=True,
    )
)
_UNICODE_RUN = re.compile(r"[\W_]+")
"""Anything but letters and digits (separators, quotes, spaces, controls, ``%``, dots) becomes one ``-``."""
_ASCII_RUN = re.compile(r"[^a-z0-9]+")
_MAX_STEM = 60
_SHORT_ID = 8
# RFC 5987 attr-char minus the alphanumerics that quote() always keeps
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"


def _transliterate(text: str) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        if low in _CYRILLIC:
            t = _CYRILLIC[low]
            out.append(t.capitalize() if ch != low and t != "_" else t)
        else:
            out.append(ch)
    return unicodedata.normalize("NFKD", "".join(out)).encode("ascii", "ignore").decode("ascii")


def slugify(text: str, *, ascii_only: bool = True) -> str:
    """``Quiz questions`` → ``quiz-questions``; ``Каталог товаров`` → ``katalog-tovarov`` (or
    ``каталог-товаров`` with ``ascii_only=False``). Lower case, runs of anything but letters and digits
    become one ``-``, no leading/trailing ``-``, at most 60 characters; may be empty."""
    if ascii_only:
        stem = _ASCII_RUN.sub("-", _transliterate(text).lower())
    else:
        stem = _UNICODE_RUN.sub("-", unicodedata.normalize("NFC", text).lower())
    return stem.strip("-")[:_MAX_STEM].rstrip("-")


def short_id(job_id: str) -> str:
    """The first 8 letters/digits of the job id (lower case), ``job`` when it has none."""
    return _ASCII_RUN.sub("", job_id.lower())[:_SHORT_ID] or "job"


def safe_filename(template_name: str, job_id: str, fmt: str, day: date | None = None) -> tuple[str, str]:
    """``(ascii_fallback, "UTF-8''…")`` for ``Content-Disposition: attachment; filename="…"; filename*=…``.

    The name is ``<slug of the template name>-<job date>-<short job id>.<ext>``
    (``quiz-questions-2026-12-06-a2635676.xlsx``): letters, digits and ``-`` only, so no path separators,
    quotes, control characters, leading dots or ``%``. Cyrillic is transliterated in the fallback
    (``Товары`` → ``tovary``); the UTF-8 name keeps the letters and is percent-encoded (RFC 5987/6266).
    Without ``day`` the date part is left out. Raises ``ValueError`` for an unknown format.
    """
    from ._registry import FORMATS

    spec = FORMATS.get(fmt)
    if spec is None:
        raise ValueError(f"unknown export format {fmt!r}")
    tail = ([day.isoformat()] if day is not None else []) + [short_id(job_id)]
    ascii_stem = slugify(template_name) or "export"
    unicode_stem = slugify(template_name, ascii_only=False) or ascii_stem
    ascii_name = "-".join([ascii_stem, *tail]) + f".{spec.extension}"
    utf8_name = "-".join([unicode_stem, *tail]) + f".{spec.extension}"
    return ascii_name, "UTF-8''" + quote(utf8_name, safe=_ATTR_CHAR_SAFE, encoding="utf-8")
