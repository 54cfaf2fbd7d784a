"""The one preview (``llmts_providers.preview``) behind ``/templates/preview`` and ``/generate/preview``: the same
structured-output request (``strict`` only when the schema allows it) and the same completion-token guess."""

from __future__ import annotations

from llmts_providers.estimate import ASSUMED_MAX_TOKENS, estimate_cost, estimate_prompt_tokens
from llmts_providers.models import ModelPricing
from llmts_providers.openrouter import OpenRouterProvider
from llmts_providers.preview import chat_request, completion_guess, preview_estimate, structured_output

CLOSED = {
    "type": "object",
    "properties": {"q": {"type": "string"}},
    "required": ["q"],
    "additionalProperties": False,
}
OPEN = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def test_strict_only_when_the_schema_allows_it() -> None:
    assert structured_output("json", CLOSED) == (CLOSED, True)
    assert structured_output("json", OPEN) == (OPEN, False)
    assert structured_output("json", None) == (None, False)
    assert structured_output("text", CLOSED) == (None, False)


def test_the_provider_body_says_what_the_provider_receives() -> None:
    provider = OpenRouterProvider(api_key=None)
    for schema, strict in ((CLOSED, True), (OPEN, False)):
        request = chat_request(
            model_id="m/x",
            messages=[("system", "s"), ("user", "u")],
            temperature=0.2,
            max_tokens=None,
            output_format="json",
            json_schema=schema,
        )
        body = provider.build_request_body(request)
        assert body["response_format"]["json_schema"]["strict"] is strict


def test_one_completion_guess() -> None:
    assert completion_guess(300, 4096) == (300, False)
    assert completion_guess(None, 4096) == (4096, False)
    assert completion_guess(None, None) == (ASSUMED_MAX_TOKENS, True)
    assert completion_guess(None, 0, assumed=2000) == (2000, True)


def test_the_estimate_uses_the_guess() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 400}]}
    pricing = ModelPricing(prompt=1.0, completion=2.0)
    got = preview_estimate(body, count=10, pricing=pricing, max_tokens=None, catalog_max_completion=4096)
    want = estimate_cost(
        prompt_tokens=estimate_prompt_tokens(body), count=10, pricing=pricing, max_tokens=4096
    )
    assert got.to_dict() == want.to_dict()
    assumed = preview_estimate(body, count=10, pricing=pricing, max_tokens=None)
    assert assumed.to_dict()["max_tokens_assumed"] is True
    assert assumed.max_completion_tokens == ASSUMED_MAX_TOKENS
