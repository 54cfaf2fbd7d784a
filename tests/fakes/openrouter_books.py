"""What the fake OpenRouter remembers about the generations it served: ``GET /api/v1/generation?id=`` (the record
a client reconciles its costs with) and a prompt cache (``usage.prompt_tokens_details.cached_tokens``).

Prompt caching as OpenRouter's guide describes it, simplified: Anthropic and Gemini models cache only up to an
explicit ``cache_control`` breakpoint (a content part of the system message); other models cache a long prefix
by themselves (here: a system message of at least ``AUTO_CACHE_MIN_TOKENS``). The first request with a given
cacheable head writes it (``cache_write_tokens``; Anthropic bills the write at 1.25×), later ones read it
(``cached_tokens``, billed at ``READ_PRICE_FACTOR`` of the prompt price); ``cache_discount`` in the generation
record is what the read saved.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

EXPLICIT_CACHE_PREFIXES = ("anthropic/", "google/gemini")
AUTO_CACHE_MIN_TOKENS = 1024
MAX_RECORDS = 200_000


def text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _breakpoint(content: Any) -> bool:
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("cache_control") for p in content)


def read_price_factor(model: str) -> float:
    return 0.1 if model.startswith("anthropic/") else 0.25 if model.startswith("google/") else 0.5


class Books:
    """Generation records (bounded, oldest dropped) and the set of cached prompt heads."""

    def __init__(self) -> None:
        self.records: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._heads: set[str] = set()

    def reset(self) -> None:
        self.records.clear()
        self._heads.clear()

    def prompt_cache(self, model: str, messages: list[Any], tokens_of: Any) -> tuple[int, int]:
        """(cached, written) prompt tokens of this request; remembers its cacheable head."""
        system = next((m for m in messages if isinstance(m, dict) and m.get("role") == "system"), None)
        if system is None:
            return 0, 0
        content = system.get("content")
        head_tokens = int(tokens_of(text_of(content)))
        if model.startswith(EXPLICIT_CACHE_PREFIXES):
            if not _breakpoint(content):
                return 0, 0
        elif head_tokens < AUTO_CACHE_MIN_TOKENS:
            return 0, 0
        key = hashlib.sha256(f"{model}\0{text_of(content)}".encode()).hexdigest()
        if key in self._heads:
            return head_tokens, 0
        self._heads.add(key)
        return 0, head_tokens

    def record(self, gen_id: str, **fields: Any) -> None:
        self.records[gen_id] = {"id": gen_id, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"), **fields}
        while len(self.records) > MAX_RECORDS:
            self.records.popitem(last=False)

    def get(self, gen_id: str) -> dict[str, Any] | None:
        return self.records.get(gen_id)
