"""Facts about a template's JSON Schema that decide how the provider is asked for structured output (the rule
lives in ``llmts_providers.preview``, shared with the templates service's preview)."""

from __future__ import annotations

from llmts_providers.preview import is_strict_compatible

__all__ = ["is_strict_compatible"]
