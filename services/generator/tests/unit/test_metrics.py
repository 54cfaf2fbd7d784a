from __future__ import annotations

from prometheus_client import REGISTRY

from llmts_generator.adapters.metrics import record_batch


def _value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_durable_batches_feed_the_domain_metrics() -> None:
    before_items = _value("llmts_generator_items_total", {"outcome": "accepted"})
    before_cost = _value("llmts_generator_cost_usd_total", {"provider": "openrouter"})
    before_err = _value(
        "llmts_generator_provider_errors_total", {"provider": "openrouter", "type": "rate_limited"}
    )
    record_batch(
        [
            {
                "provider": "openrouter",
                "outcome": "accepted",
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "cost_usd": 0.25,
            },
            {"provider": "openrouter", "outcome": "retried", "error": {"code": "rate_limited"}},
        ],
        [{"status": "accepted"}],
    )
    assert _value("llmts_generator_items_total", {"outcome": "accepted"}) == before_items + 1
    assert _value("llmts_generator_cost_usd_total", {"provider": "openrouter"}) == before_cost + 0.25
    assert (
        _value("llmts_generator_provider_errors_total", {"provider": "openrouter", "type": "rate_limited"})
        == before_err + 1
    )
