"""OpenAPI examples of the dataset-grade template fields (issue 18): a two-stage product template with a sampled
tone, a seed dataset and a judge, and its preview (``llmts_api.examples`` holds the other examples)."""

from __future__ import annotations

from typing import Any

DATASET_ID = "5b1f0c7e9a4d4e21b8f3a0c2d9e7f611"
_DESCRIPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"description": {"type": "string", "examples": ["A sturdy kettle."]}},
    "required": ["description"],
}
_FAQ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"faq": {"type": "array", "items": {"type": "string"}}},
    "required": ["faq"],
}
JUDGE: dict[str, Any] = {
    "model": {"id": "openai/gpt-4o-mini"},
    "rubric": "Is the description accurate for the product and the FAQ helpful?",
    "scores": {"accuracy": [1, 5], "helpfulness": [1, 5]},
    "accept": "accuracy >= 4 and helpfulness >= 3",
}
PIPELINE_DOCUMENT: dict[str, Any] = {
    "name": "Product descriptions and FAQ",
    "prompts": {"user": "Describe {{ title }} (price {{ price }}) in a {{ tone }} tone."},
    "schema": _DESCRIPTION_SCHEMA,
    "variables": {
        "tone": {"sampler": "category", "values": ["formal", "friendly", "terse"], "weights": [2, 1, 1]}
    },
    "seed": {"dataset_id": DATASET_ID, "sampling": "shuffle", "columns": ["title", "price"]},
    "judge": JUDGE,
    "stages": [
        {
            "name": "faq",
            "prompts": {"user": "Write three FAQ entries for {{ title }}: {{ main.description }}"},
            "schema": _FAQ_SCHEMA,
        }
    ],
}
_USER = "Describe Kettle (price 29.90) in a formal tone."
PIPELINE_PREVIEW: dict[str, Any] = {
    "template_id": "t_3f9a",
    "version": 1,
    "index": 0,
    "task_index": 0,
    "task": None,
    "rendered": {"system": "", "user": _USER},
    "provider": "openrouter",
    "model": {"id": "openai/gpt-4o-mini", "fallback": []},
    "request_body": {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": _USER}]},
    "token_estimate": {"prompt_tokens": 40, "max_completion_tokens": 1024, "method": "chars/4"},
    "cost_estimate": None,
    "notes": ["sampled values are drawn with sample_seed=0: what a job with seed 0 draws"],
    "sample_seed": 0,
    "items": [
        {
            "index": 0,
            "task_index": 0,
            "sampled": {"tone": "formal"},
            "seed_row": {"title": "Kettle", "price": "29.90"},
            "seed_row_index": 0,
            "rendered": {"system": "", "user": _USER},
            "stages": [
                {
                    "name": "faq",
                    "rendered": {
                        "system": "",
                        "user": "Write three FAQ entries for Kettle: A sturdy kettle.",
                    },
                }
            ],
        }
    ],
    "judge": {
        "model": {"provider": None, "id": "openai/gpt-4o-mini"},
        "placeholder_item": {"description": "A sturdy kettle.", "faq": {"faq": ["<faq>"]}},
        "messages": [
            {"role": "system", "content": "You are a strict, consistent judge of generated data. …"},
            {"role": "user", "content": "Item to judge:\n{…}"},
        ],
        "response_schema": {"type": "object", "required": ["scores", "reason"]},
    },
}
