"""Streaming concatenation of small, complete PDFs (reportlab's output) into one PDF.

reportlab keeps every page of a document until ``save``; the PDF writer therefore renders a few thousand items
at a time as a separate small document and this module appends each one's objects to the output as soon as it
is rendered. Only the new object offsets and the page object numbers are kept (a few ints per page).

Scope: the input must use a classic cross-reference table (no xref streams, no object streams, no incremental
updates) — which is what reportlab writes. Objects are copied byte for byte, except that indirect references
(``n 0 R``) in the dictionary part (never inside a stream) are renumbered. Each part's catalog and page tree
are dropped (one flat page tree is written at the end); the first part's document information dictionary is
kept verbatim (it holds no references; its strings may contain anything).
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

_HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
_CATALOG, _PAGES, _INFO = 1, 2, 3
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
_XREF_SUB = re.compile(rb"(\d+) (\d+)\s*\r?\n")
_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])")
_OBJ_HEAD = re.compile(rb"(\d+) (\d+) obj\s")
_REF = re.compile(rb"(?<![\d.])(\d+) 0 R\b")
_STREAM = re.compile(rb"stream\r?\n")


class PdfFormatError(ValueError):
    """The part is not a PDF this module can concatenate."""


class _Out(Protocol):
    def write(self, data: bytes, /) -> object: ...


def _ref(pattern: bytes, text: bytes) -> int:
    m = re.search(pattern + rb"\s+(\d+) 0 R", text)
    if m is None:
        raise PdfFormatError(f"no {pattern.decode()} reference")
    return int(m.group(1))


def _objects(pdf: bytes) -> tuple[dict[int, bytes], bytes]:
    """The in-use objects (number → bytes after ``n g obj``, up to the next object) and the trailer."""
    m = _STARTXREF.search(pdf, max(0, len(pdf) - 64))
    if m is None:
        raise PdfFormatError("no startxref")
    xref_at = int(m.group(1))
    if pdf[xref_at : xref_at + 4] != b"xref":
        raise PdfFormatError("not a classic cross-reference table")
    pos = xref_at + 4
    while pdf[pos : pos + 1] in (b"\r", b"\n", b" "):
        pos += 1
    offsets: dict[int, int] = {}
    while True:
        sub = _XREF_SUB.match(pdf, pos)
        if sub is None:
            break
        first, count = int(sub.group(1)), int(sub.group(2))
        pos = sub.end()
        for k in range(count):
            entry = _XREF_ENTRY.match(pdf, pos)
            if entry is None:
                raise PdfFormatError("bad cross-reference entry")
            if entry.group(3) == b"n":
                offsets[first + k] = int(entry.group(1))
            pos = entry.end()
            while pdf[pos : pos + 1] in (b"\r", b"\n", b" "):
                pos += 1
    trailer_at = pdf.find(b"trailer", pos)
    if trailer_at < 0 or b"/Prev" in pdf[trailer_at:]:
        raise PdfFormatError("no trailer, or an incrementally updated file")
    trailer = pdf[trailer_at : m.start()]
    starts = sorted((off, num) for num, off in offsets.items())
    bodies: dict[int, bytes] = {}
    for i, (off, num) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else xref_at
        head = _OBJ_HEAD.match(pdf, off)
        if head is None or int(head.group(1)) != num:
            raise PdfFormatError(f"object {num} is not where the cross-reference table says")
        bodies[num] = pdf[head.end() : end]
    return bodies, trailer


class PdfConcatenator:
    """Appends parts to ``out`` as they come; :meth:`close` writes the page tree, catalog and xref."""

    def __init__(self, out: _Out) -> None:
        self._out = out
        self._pos = 0
        self._offsets: dict[int, int] = {}
        self._next = _INFO + 1
        self._kids: list[int] = []
        self._info = False
        self._emit(_HEADER)

    @property
    def pages(self) -> int:
        return len(self._kids)

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._pos += len(data)

    def _object(self, num: int, body: bytes) -> None:
        self._offsets[num] = self._pos
        self._emit(b"%d 0 obj\n" % num)
        self._emit(body)
        if not body.endswith(b"\n"):
            self._emit(b"\n")

    def add(self, pdf: bytes, *, keep_info: bool = False) -> int:
        """Append one complete PDF's pages (and what they use); the number of pages added."""
        bodies, trailer = _objects(pdf)
        root = _ref(rb"/Root", trailer)
        info = _ref(rb"/Info", trailer) if b"/Info" in trailer else None
        pages_root = _ref(rb"/Pages", bodies[root])
        kids_m = re.search(rb"/Kids\s*\[([^\]]*)\]", bodies[pages_root])
        if kids_m is None or b"/Kids" in _first_kid_bodies(bodies, kids_m.group(1)):
            raise PdfFormatError("only a flat page tree is supported")
        kids = [int(k) for k in _REF.findall(kids_m.group(1))]
        mapping: dict[int, int] = {root: _CATALOG, pages_root: _PAGES}
        if info is not None:
            mapping[info] = _INFO
        for num in sorted(bodies):
            if num not in mapping:
                mapping[num] = self._next
                self._next += 1

        def renumber(m: re.Match[bytes]) -> bytes:
            old = int(m.group(1))
            if old not in mapping:
                raise PdfFormatError(f"reference to a missing object {old}")
            return b"%d 0 R" % mapping[old]

        for num in sorted(bodies, key=lambda n: mapping[n]):
            if num in (root, pages_root):
                continue
            body = bodies[num]
            if num == info:
                if keep_info and not self._info:
                    self._object(_INFO, body)  # verbatim: no references, and user text in its strings
                    self._info = True
                continue
            s = _STREAM.search(body)
            head, rest = (body[: s.start()], body[s.start() :]) if s else (body, b"")
            self._object(mapping[num], _REF.sub(renumber, head) + rest)
        self._kids.extend(mapping[k] for k in kids)
        return len(kids)

    def close(self, *, id_seed: str = "") -> None:
        kids = b" ".join(b"%d 0 R" % k for k in self._kids)
        self._object(_PAGES, b"<< /Type /Pages /Count %d /Kids [ %s ] >>\nendobj\n" % (len(self._kids), kids))
        self._object(_CATALOG, b"<< /Type /Catalog /Pages 2 0 R /PageMode /UseNone >>\nendobj\n")
        if not self._info:
            self._object(_INFO, b"<< /Producer (LLM Template System) >>\nendobj\n")
        size = self._next
        xref_at = self._pos
        rows = [b"xref\n0 %d\n0000000000 65535 f \n" % size]
        for num in range(1, size):
            off = self._offsets.get(num)
            rows.append(b"%010d 00000 n \n" % off if off is not None else b"0000000000 00000 f \n")
        self._emit(b"".join(rows))
        doc_id = hashlib.md5(
            f"{id_seed}:{len(self._kids)}:{xref_at}".encode(), usedforsecurity=False
        ).hexdigest()
        self._emit(
            b"trailer\n<< /Size %d /Root 1 0 R /Info 3 0 R /ID [ <%s> <%s> ] >>\nstartxref\n%d\n%%%%EOF\n"
            % (size, doc_id.encode(), doc_id.encode(), xref_at)
        )


def _first_kid_bodies(bodies: dict[int, bytes], kids: bytes) -> bytes:
    """The dictionary of the first kid (a nested page tree node would have its own /Kids)."""
    first = _REF.search(kids)
    if first is None:
        return b""
    body = bodies.get(int(first.group(1)), b"")
    s = _STREAM.search(body)
    return body[: s.start()] if s else body
