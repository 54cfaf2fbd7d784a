"""One preview for every caller (``POST /templates/preview`` and the generator's ``POST /preview`` behind
``/generate/preview``): the provider request a generation would send — structured output from the template's schema,
``strict`` only when the schema allows it, exactly as the generator asks — and the same completion-token guess for
the cost estimate.

- :func:`structured_output` / :func:`chat_request`: the schema to send and ``strict`` (OpenAI-style strict output
  needs every object to list all its properties as required and forbid others; otherwise the provider would refuse
  the request, so it is asked non-strictly and the answer validated by the generator).
- :func:`completion_guess`: completion tokens per call for the high estimate: the model's ``max_tokens``, else the
  catalog's ``max_completion_tokens`` for the model, else ``ASSUMED_MAX_TOKENS`` (1024, flagged as assumed).
- :func:`preview_estimate`: ``estimate_cost`` of a request body with that guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmts_providers.estimate import (
    ASSUMED_MAX_TOKENS,
    CostEstimate,
    estimate_cost,
    estimate_prompt_tokens,
)
from llmts_providers.models import ChatMessage, ChatRequest, ModelPricing


def is_strict_compatible(schema: Any, _depth: int = 0) -> bool:
    """True when the schema fits OpenAI-style ``strict: true`` structured output.

    Every object must list all its properties as required and forbid additional properties; otherwise the
    provider rejects a strict request, so the generator asks non-strictly and validates itself.
    """
    if _depth > 32:
        return False
    if isinstance(schema, bool) or schema is None:
        return True
    if not isinstance(schema, Mapping):
        return False
    types = schema.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types) or "properties" in schema
    if is_object:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties", True) is not False:
            return False
        if set(schema.get("required") or []) != set(props):
            return False
        if not all(is_strict_compatible(p, _depth + 1) for p in props.values()):
            return False
    for key in ("items",):
        if key in schema and not is_strict_compatible(schema[key], _depth + 1):
            return False
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key) or []:
            if not is_strict_compatible(sub, _depth + 1):
                return False
    for sub in (schema.get("$defs") or schema.get("definitions") or {}).values():
        if not is_strict_compatible(sub, _depth + 1):
            return False
    return True


def structured_output(
    output_format: str, json_schema: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, bool]:
    """(schema to ask the provider for, strict): json templates with a schema get structured output, strict only
    when :func:`is_strict_compatible`."""
    if output_format != "json" or json_schema is None:
        return None, False
    return dict(json_schema), is_strict_compatible(json_schema)


def chat_request(
    *,
    model_id: str,
    messages: Sequence[tuple[str, str]],
    temperature: float | None,
    max_tokens: int | None,
    output_format: str,
    json_schema: Mapping[str, Any] | None,
    stream: bool = False,
) -> ChatRequest:
    """The request a generation sends for ``messages`` ((role, content) pairs)."""
    schema, strict = structured_output(output_format, json_schema)
    return ChatRequest(
        model=model_id,
        messages=[ChatMessage(role=role, content=content) for role, content in messages],
        temperature=temperature,
        max_tokens=max_tokens,
        json_schema=schema,
        strict=strict,
        stream=stream,
    )


def completion_guess(
    max_tokens: int | None, catalog_max_completion: int | None = None, assumed: int = ASSUMED_MAX_TOKENS
) -> tuple[int, bool]:
    """(completion tokens per call for the high estimate, assumed?): ``max_tokens``, else the catalog's maximum
    for the model, else ``assumed`` (``ASSUMED_MAX_TOKENS``; then the flag is True)."""
    if max_tokens is not None:
        return max_tokens, False
    if catalog_max_completion is not None and catalog_max_completion > 0:
        return catalog_max_completion, False
    return assumed, True


def preview_estimate(
    request_body: Mapping[str, Any],
    *,
    count: int,
    pricing: ModelPricing | None,
    max_tokens: int | None,
    catalog_max_completion: int | None = None,
    attempts: int = 1,
    repair_prompt_tokens: int = 0,
    assumed_max_tokens: int = ASSUMED_MAX_TOKENS,
) -> CostEstimate:
    """The cost range of ``count`` items whose calls look like ``request_body``, with :func:`completion_guess`."""
    completion, assumed = completion_guess(max_tokens, catalog_max_completion, assumed_max_tokens)
    return estimate_cost(
        prompt_tokens=estimate_prompt_tokens(request_body),
        count=count,
        pricing=pricing,
        max_tokens=None if assumed else completion,
        assumed_max_tokens=completion,
        attempts=attempts,
        repair_prompt_tokens=repair_prompt_tokens,
    )
