"""Byte sinks: count and hash everything on its way to the caller's stream."""

from __future__ import annotations

import hashlib
from typing import BinaryIO


class HashingSink:
    """Wraps ``out``: counts bytes and computes SHA-256 while writing.

    It has ``tell`` but no ``seek``, so :mod:`zipfile` (openpyxl) switches to its streaming mode, and
    pyarrow/lxml treat it as a plain writable file.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._sha = hashlib.sha256()
        self.bytes = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        n = data.nbytes if isinstance(data, memoryview) else len(data)
        if n:
            self._sha.update(data)
            self._out.write(data)
            self.bytes += n
        return n

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        flush = getattr(self._out, "flush", None)
        if flush is not None:
            flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        """Writers (zipfile, pyarrow) may close their file; the caller's ``out`` stays open."""
        self.closed = True

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class TextBuffer:
    """Collects str fragments and hands them to the sink UTF-8 encoded in ~256 KiB chunks."""

    __slots__ = ("_limit", "_n", "_parts", "_sink")

    def __init__(self, sink: HashingSink, limit: int = 1 << 18) -> None:
        self._sink = sink
        self._parts: list[str] = []
        self._n = 0
        self._limit = limit

    def write(self, text: str) -> None:
        self._parts.append(text)
        self._n += len(text)
        if self._n >= self._limit:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            # "replace": a lone surrogate (possible in a Python str, never in BSON) must not abort an export.
            self._sink.write("".join(self._parts).encode("utf-8", "replace"))
            self._parts.clear()
            self._n = 0
