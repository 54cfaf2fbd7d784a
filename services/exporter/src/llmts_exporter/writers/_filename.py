"""Download filenames: an ASCII fallback and an RFC 5987 ``filename*`` value."""

from __future__ import annotations

import re
import unicodedata
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
_UNSAFE = re.compile(r"[^\w.\-]+")
"""Anything but letters, digits, ``_``, ``.``, ``-``: separators, quotes, spaces, controls, ``%``."""
_NOT_ASCII_SAFE = re.compile(r"[^A-Za-z0-9._\-]+")
_RUNS = re.compile(r"_{2,}")
_DOTS = re.compile(r"\.{2,}")
_MAX_STEM = 80
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


def _tidy(stem: str, pattern: re.Pattern[str]) -> str:
    stem = pattern.sub("_", stem)
    stem = _DOTS.sub(".", _RUNS.sub("_", stem)).strip("._-")
    return stem[:_MAX_STEM].rstrip("._-")


def safe_filename(template_name: str, job_id: str, fmt: str) -> tuple[str, str]:
    """``(ascii_fallback, "UTF-8''…")`` for ``Content-Disposition: attachment; filename="…"; filename*=…``.

    No path separators, quotes, control characters, leading dots or ``%``; Cyrillic is transliterated in
    the fallback (``Товары`` → ``Tovary``); the UTF-8 name keeps the letters and is percent-encoded.
    Raises ``ValueError`` for an unknown format.
    """
    from ._registry import FORMATS

    spec = FORMATS.get(fmt)
    if spec is None:
        raise ValueError(f"unknown export format {fmt!r}")
    job = _tidy(job_id, _NOT_ASCII_SAFE)[:40] or "job"
    unicode_stem = _tidy(unicodedata.normalize("NFC", template_name), _UNSAFE) or "export"
    ascii_stem = _tidy(_transliterate(template_name), _NOT_ASCII_SAFE) or "export"
    ascii_name = f"{ascii_stem}-{job}.{spec.extension}"
    utf8_name = f"{unicode_stem}-{job}.{spec.extension}"
    return ascii_name, "UTF-8''" + quote(utf8_name, safe=_ATTR_CHAR_SAFE, encoding="utf-8")
