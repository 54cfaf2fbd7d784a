"""Generate tests/fakes/data/openrouter_models.json: a realistic OpenRouter /models response (≥300 models).

Deterministic (fixed seed). Run: ``uv run python -m tests.fakes.make_catalog``.
Shape per providers-api.md A1: string per-token prices, ``:free`` twins, web_search pricing, varied modalities,
``response_format`` / ``structured_outputs`` present or absent, contexts, created dates, ``openrouter/auto`` with
the "-1" variable-price sentinel.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "data" / "openrouter_models.json"

# vendor → (display name, tokenizer, [(slug, label, prompt $/M, completion $/M, context, family traits)])
VENDORS: dict[str, tuple[str, str, list[str]]] = {
    "openai": (
        "OpenAI",
        "GPT",
        [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "o1",
            "o3",
            "o3-mini",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5-nano",
            "gpt-oss-120b",
            "gpt-oss-20b",
            "gpt-4-turbo",
            "gpt-3.5-turbo",
            "gpt-4o-search-preview",
            "gpt-4o-mini-search-preview",
            "chatgpt-4o-latest",
            "codex-mini",
        ],
    ),
    "anthropic": (
        "Anthropic",
        "Claude",
        [
            "claude-3.5-haiku",
            "claude-3.5-sonnet",
            "claude-3.7-sonnet",
            "claude-sonnet-4",
            "claude-opus-4",
            "claude-opus-4.1",
            "claude-sonnet-4.5",
            "claude-haiku-4.5",
            "claude-3-haiku",
            "claude-3-opus",
        ],
    ),
    "google": (
        "Google",
        "Gemini",
        [
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
            "gemini-2.0-flash-001",
            "gemini-2.0-flash-lite-001",
            "gemma-3-27b-it",
            "gemma-3-12b-it",
            "gemma-3-4b-it",
            "gemma-2-9b-it",
            "gemini-2.5-flash-image",
            "gemini-flash-1.5-8b",
            "gemma-3n-e4b-it",
        ],
    ),
    "meta-llama": (
        "Meta",
        "Llama3",
        [
            "llama-3.3-70b-instruct",
            "llama-3.1-8b-instruct",
            "llama-3.1-70b-instruct",
            "llama-3.1-405b-instruct",
            "llama-3.2-3b-instruct",
            "llama-3.2-1b-instruct",
            "llama-3.2-11b-vision-instruct",
            "llama-4-maverick",
            "llama-4-scout",
            "llama-guard-4-12b",
            "llama-3-8b-instruct",
            "llama-3-70b-instruct",
        ],
    ),
    "mistralai": (
        "Mistral",
        "Mistral",
        [
            "mistral-small-3.2-24b-instruct",
            "mistral-medium-3.1",
            "mistral-large-2411",
            "mistral-nemo",
            "mistral-7b-instruct",
            "mixtral-8x7b-instruct",
            "mixtral-8x22b-instruct",
            "codestral-2508",
            "devstral-small",
            "devstral-medium",
            "ministral-8b",
            "ministral-3b",
            "pixtral-12b",
            "pixtral-large-2411",
            "magistral-medium-2506",
        ],
    ),
    "deepseek": (
        "DeepSeek",
        "DeepSeek",
        [
            "deepseek-chat-v3-0324",
            "deepseek-chat-v3.1",
            "deepseek-r1",
            "deepseek-r1-0528",
            "deepseek-r1-distill-llama-70b",
            "deepseek-r1-distill-qwen-32b",
            "deepseek-v3.2-exp",
            "deepseek-prover-v2",
        ],
    ),
    "qwen": (
        "Qwen",
        "Qwen3",
        [
            "qwen3-235b-a22b",
            "qwen3-30b-a3b",
            "qwen3-32b",
            "qwen3-14b",
            "qwen3-8b",
            "qwen3-coder",
            "qwen3-coder-30b-a3b-instruct",
            "qwen-2.5-72b-instruct",
            "qwen-2.5-7b-instruct",
            "qwen-2.5-coder-32b-instruct",
            "qwen2.5-vl-72b-instruct",
            "qwen2.5-vl-32b-instruct",
            "qwq-32b",
            "qwen-max",
            "qwen-plus",
            "qwen-turbo",
            "qwen3-next-80b-a3b-instruct",
            "qwen3-vl-235b-a22b-instruct",
        ],
    ),
    "x-ai": (
        "xAI",
        "Grok",
        ["grok-4", "grok-4-fast", "grok-3", "grok-3-mini", "grok-code-fast-1", "grok-2-vision-1212"],
    ),
    "cohere": (
        "Cohere",
        "Cohere",
        ["command-r-plus-08-2024", "command-r-08-2024", "command-a", "command-r7b-12-2024"],
    ),
    "perplexity": (
        "Perplexity",
        "Other",
        ["sonar", "sonar-pro", "sonar-reasoning", "sonar-reasoning-pro", "sonar-deep-research"],
    ),
    "microsoft": (
        "Microsoft",
        "Other",
        [
            "phi-4",
            "phi-4-multimodal-instruct",
            "phi-4-reasoning-plus",
            "phi-3.5-mini-128k-instruct",
            "wizardlm-2-8x22b",
            "mai-ds-r1",
        ],
    ),
    "nvidia": (
        "NVIDIA",
        "Llama3",
        [
            "llama-3.1-nemotron-70b-instruct",
            "llama-3.3-nemotron-super-49b-v1",
            "nemotron-nano-9b-v2",
            "llama-3.1-nemotron-ultra-253b-v1",
        ],
    ),
    "amazon": ("Amazon", "Nova", ["nova-pro-v1", "nova-lite-v1", "nova-micro-v1", "nova-premier-v1"]),
    "moonshotai": (
        "MoonshotAI",
        "Other",
        ["kimi-k2", "kimi-k2-0905", "kimi-dev-72b", "kimi-vl-a3b-thinking"],
    ),
    "z-ai": ("Z.AI", "Other", ["glm-4.5", "glm-4.5-air", "glm-4.6", "glm-4.5v", "glm-4-32b"]),
    "nousresearch": (
        "Nous",
        "Llama3",
        [
            "hermes-3-llama-3.1-405b",
            "hermes-3-llama-3.1-70b",
            "hermes-4-70b",
            "hermes-4-405b",
            "deephermes-3-mistral-24b-preview",
        ],
    ),
    "minimax": ("MiniMax", "Other", ["minimax-m1", "minimax-01", "minimax-m2"]),
    "ai21": ("AI21", "Other", ["jamba-large-1.7", "jamba-mini-1.7"]),
    "inflection": ("Inflection", "Other", ["inflection-3-pi", "inflection-3-productivity"]),
    "liquid": ("Liquid", "Other", ["lfm-7b", "lfm-3b", "lfm-40b"]),
    "baidu": ("Baidu", "Other", ["ernie-4.5-300b-a47b", "ernie-4.5-21b-a3b", "ernie-4.5-vl-424b-a47b"]),
    "tencent": ("Tencent", "Other", ["hunyuan-a13b-instruct"]),
    "thedrummer": (
        "TheDrummer",
        "Mistral",
        ["rocinante-12b", "unslopnemo-12b", "anubis-70b-v1.1", "skyfall-36b-v2"],
    ),
    "sao10k": (
        "Sao10K",
        "Llama3",
        ["l3.3-euryale-70b", "l3.1-euryale-70b", "l3-lunaris-8b", "l3.1-70b-hanami-x1"],
    ),
    "gryphe": ("Gryphe", "Llama2", ["mythomax-l2-13b"]),
    "arcee-ai": (
        "Arcee AI",
        "Other",
        ["virtuoso-large", "coder-large", "maestro-reasoning", "spotlight", "afm-4.5b"],
    ),
    "ibm-granite": ("IBM", "Other", ["granite-4.0-h-micro"]),
    "cognitivecomputations": (
        "Dolphin",
        "Mistral",
        ["dolphin-mistral-24b-venice-edition", "dolphin3.0-mistral-24b"],
    ),
    "bytedance": ("ByteDance", "Other", ["seed-oss-36b-instruct", "ui-tars-1.5-7b"]),
    "inception": ("Inception", "Other", ["mercury", "mercury-coder"]),
    "openrouter": ("OpenRouter", "Router", ["auto"]),
}

BASE_PARAMS = ["max_tokens", "temperature", "top_p", "stop", "frequency_penalty", "presence_penalty", "seed"]
EXTRA_PARAMS = ["top_k", "min_p", "repetition_penalty", "logit_bias", "logprobs", "top_logprobs"]
CONTEXTS = [
    4096,
    8192,
    16384,
    32768,
    32768,
    65536,
    128000,
    131072,
    131072,
    163840,
    200000,
    262144,
    400000,
    1048576,
]
FREE_CANDIDATES = (
    "llama-3.3-70b",
    "llama-3.2-3b",
    "gemma-3",
    "mistral-small",
    "mistral-7b",
    "deepseek-chat",
    "deepseek-r1",
    "qwen3",
    "qwen-2.5",
    "kimi-k2",
    "glm-4.5-air",
    "gpt-oss",
    "hermes-3",
    "mistral-nemo",
    "phi-4",
    "nemotron-nano",
    "llama-4",
    "qwq",
    "dolphin",
    "devstral",
    "gemini-2.0-flash-001",
    "llama-3.1-8b",
    "mai-ds",
    "hunyuan",
    "qwen2.5-vl",
    "ernie",
)


def per_token(usd_per_m: Decimal) -> str:
    if usd_per_m == 0:
        return "0"
    return format((usd_per_m / Decimal(1_000_000)).normalize(), "f")


def make_model(rng: random.Random, vendor: str, vname: str, tokenizer: str, slug: str) -> dict[str, Any]:
    model_id = f"{vendor}/{slug}"
    big = any(
        t in slug for t in ("opus", "405b", "large", "pro", "gpt-5", "o1", "o3", "grok-4", "max", "premier")
    )
    small = any(
        t in slug
        for t in ("mini", "nano", "lite", "3b", "1b", "7b", "8b", "micro", "haiku", "small", "flash")
    )
    prompt_m = (
        Decimal(rng.choice(["15", "10", "5", "3", "2.5"]))
        if big
        else (
            Decimal(rng.choice(["0.02", "0.04", "0.05", "0.075", "0.1", "0.15"]))
            if small
            else Decimal(rng.choice(["0.2", "0.27", "0.3", "0.4", "0.5", "0.8", "1", "1.25"]))
        )
    )
    completion_m = (prompt_m * Decimal(rng.choice([2, 3, 4, 5]))).normalize()
    image_in = any(
        t in slug
        for t in (
            "vision",
            "vl",
            "4o",
            "gemini",
            "claude",
            "pixtral",
            "multimodal",
            "llama-4",
            "gpt-4.1",
            "gpt-5",
            "grok-4",
            "nova-pro",
            "nova-lite",
            "glm-4.5v",
            "gemma-3",
        )
    )
    inputs = ["text", "image"] if image_in else ["text"]
    if "gemini" in slug or "gpt-5" in slug or "claude" in slug:
        inputs.append("file")
    if "gemini-2.5" in slug or "phi-4-multimodal" in slug:
        inputs.append("audio")
    outputs = ["image", "text"] if slug.endswith("-image") else ["text"]
    params = list(BASE_PARAMS)
    if rng.random() < 0.6:
        params += rng.sample(EXTRA_PARAMS, k=rng.randint(1, len(EXTRA_PARAMS)))
    structured = vendor in (
        "openai",
        "google",
        "mistralai",
        "x-ai",
        "deepseek",
        "qwen",
        "z-ai",
        "cohere",
    ) or (rng.random() < 0.45)
    if structured:
        params.append("response_format")
        if rng.random() < 0.75:
            params.append("structured_outputs")
    elif rng.random() < 0.2:
        params.append("response_format")  # json_object only, no structured_outputs
    if rng.random() < 0.7 and "guard" not in slug:
        params += ["tools", "tool_choice"]
    if any(
        t in slug
        for t in ("r1", "o1", "o3", "o4", "reasoning", "thinking", "qwq", "gpt-5", "grok", "magistral")
    ):
        params += ["reasoning", "include_reasoning"]
    web_search = "0"
    if vendor == "perplexity" or "search" in slug:
        web_search = rng.choice(["0.005", "0.01", "0.0275"])
        params.append("web_search_options")
    elif vendor in ("openai", "anthropic", "x-ai") and rng.random() < 0.4:
        web_search = "0.01"
    context = rng.choice(CONTEXTS[6:] if big else CONTEXTS)
    if vendor == "google" and "gemini" in slug:
        context = 1048576
    max_completion: int | None = rng.choice([None, 4096, 8192, 16384, 32768, 65536, 100000])
    if max_completion and max_completion > context:
        max_completion = context // 2
    created = 1_690_000_000 + rng.randint(0, 75_000_000)
    pricing: dict[str, str] = {"prompt": per_token(prompt_m), "completion": per_token(completion_m)}
    if rng.random() < 0.8:
        pricing["request"] = "0"
    if image_in:
        pricing["image"] = rng.choice(["0", "0.001445", "0.0048", "0.00072"])
    if web_search != "0" or rng.random() < 0.5:
        pricing["web_search"] = web_search
    if rng.random() < 0.5:
        pricing["internal_reasoning"] = "0"
    if rng.random() < 0.35:
        pricing["input_cache_read"] = per_token(prompt_m / 4)
    label = slug.replace("-", " ").title()
    canonical = f"{model_id}-{rng.randint(2024, 2025)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    model: dict[str, Any] = {
        "id": model_id,
        "canonical_slug": canonical,
        "hugging_face_id": f"{vname.split()[0]}/{slug}"
        if vendor in ("meta-llama", "qwen", "mistralai", "deepseek")
        else "",
        "name": f"{vname}: {label}",
        "created": created,
        "description": f"{label} by {vname}. A {'large' if big else 'small' if small else 'mid-size'} model with a "
        f"{context:,}-token context window, suited to {rng.choice(['chat', 'coding', 'reasoning', 'extraction', 'multilingual tasks', 'agents'])}.",
        "context_length": context,
        "architecture": {
            "modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}",
            "input_modalities": inputs,
            "output_modalities": outputs,
            "tokenizer": tokenizer,
            "instruct_type": rng.choice([None, None, "chatml", "llama3", "mistral", "deepseek-r1"]),
        },
        "pricing": pricing,
        "top_provider": {
            "context_length": context,
            "max_completion_tokens": max_completion,
            "is_moderated": vendor in ("openai", "anthropic"),
        },
        "per_request_limits": None,
        "supported_parameters": sorted(set(params)),
        "default_parameters": {
            "temperature": rng.choice([None, 0.7, 1.0]),
            "top_p": None,
            "frequency_penalty": None,
        },
        "knowledge_cutoff": rng.choice([None, "2024-06-01", "2024-10-01", "2025-01-01"]),
        "expiration_date": None,
        "supported_voices": None,
        "links": {"details": f"/api/v1/models/{canonical}/endpoints"},
    }
    if rng.random() < 0.15:  # older responses lack these: clients must tolerate it
        for k in ("links", "knowledge_cutoff", "supported_voices", "hugging_face_id"):
            model.pop(k, None)
    return model


def free_twin(model: dict[str, Any]) -> dict[str, Any]:
    twin = json.loads(json.dumps(model))
    twin["id"] = f"{model['id']}:free"
    twin["name"] = f"{model['name']} (free)"
    twin["pricing"] = dict.fromkeys(model["pricing"], "0")
    twin["top_provider"]["max_completion_tokens"] = min(
        model["top_provider"]["max_completion_tokens"] or 8192, 8192
    )
    twin["supported_parameters"] = [
        p for p in model["supported_parameters"] if p not in ("logit_bias", "web_search_options")
    ]
    return twin


def build() -> dict[str, Any]:
    rng = random.Random(20251128)
    data: list[dict[str, Any]] = []
    for vendor, (vname, tokenizer, slugs) in VENDORS.items():
        for slug in slugs:
            if vendor == "openrouter":
                data.append(router_model())
                continue
            m = make_model(rng, vendor, vname, tokenizer, slug)
            data.append(m)
            if any(c in slug for c in FREE_CANDIDATES) and rng.random() < 0.8:
                data.append(free_twin(m))
            # dated snapshot variants make the catalog realistically long
            if rng.random() < 0.5 and vendor not in ("perplexity",):
                snap = json.loads(json.dumps(m))
                suffix = rng.choice(
                    ["-2024-08-06", "-2024-11-20", "-0613", "-preview", "-exp", "-latest", "-001"]
                )
                snap["id"] = m["id"] + suffix
                snap["name"] = m["name"] + f" ({suffix.strip('-')})"
                snap["created"] = m["created"] - rng.randint(1_000_000, 20_000_000)
                data.append(snap)
    data.append(embedding_model())
    data.append(image_only_model())
    data.sort(key=lambda m: -int(m["created"]))
    assert len(data) >= 300
    assert len({m["id"] for m in data}) == len(data)
    return {"data": data, "total_count": len(data), "links": {"next": None}}


def router_model() -> dict[str, Any]:
    return {
        "id": "openrouter/auto",
        "canonical_slug": "openrouter/auto",
        "hugging_face_id": None,
        "name": "Auto Router",
        "created": 1699401600,
        "description": "Your prompt will be processed by a meta-model and routed to one of dozens of models.",
        "context_length": 2000000,
        "architecture": {
            "modality": "text+image->text",
            "input_modalities": ["text", "image"],
            "output_modalities": ["text"],
            "tokenizer": "Router",
            "instruct_type": None,
        },
        "pricing": {"prompt": "-1", "completion": "-1"},
        "top_provider": {"context_length": None, "max_completion_tokens": None, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": [
            "max_tokens",
            "temperature",
            "response_format",
            "structured_outputs",
            "tools",
        ],
        "default_parameters": {},
        "supported_voices": None,
        "links": {"details": "/api/v1/models/openrouter/auto/endpoints"},
    }


def embedding_model() -> dict[str, Any]:
    return {
        "id": "openai/text-embedding-3-small",
        "canonical_slug": "openai/text-embedding-3-small",
        "name": "OpenAI: Text Embedding 3 Small",
        "created": 1706140800,
        "description": "Embeddings.",
        "context_length": 8192,
        "architecture": {
            "modality": "text->embeddings",
            "input_modalities": ["text"],
            "output_modalities": ["embeddings"],
            "tokenizer": "GPT",
            "instruct_type": None,
        },
        "pricing": {"prompt": "0.00000002", "completion": "0"},
        "top_provider": {"context_length": 8192, "max_completion_tokens": None, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": [],
        "default_parameters": {},
        "supported_voices": None,
        "links": {"details": "/api/v1/models/openai/text-embedding-3-small/endpoints"},
    }


def image_only_model() -> dict[str, Any]:
    return {
        "id": "black-forest-labs/flux-1.1-pro",
        "canonical_slug": "black-forest-labs/flux-1.1-pro",
        "name": "Black Forest Labs: FLUX 1.1 Pro",
        "created": 1728000000,
        "description": "Image generation.",
        "context_length": 4096,
        "architecture": {
            "modality": "text->image",
            "input_modalities": ["text"],
            "output_modalities": ["image"],
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {"prompt": "0", "completion": "0", "image": "0.04"},
        "top_provider": {"context_length": 4096, "max_completion_tokens": None, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": [],
        "default_parameters": {},
        "supported_voices": None,
        "links": {"details": "/api/v1/models/black-forest-labs/flux-1.1-pro/endpoints"},
    }


def main() -> None:
    catalog = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(catalog, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {catalog['total_count']} models to {OUT}")


if __name__ == "__main__":
    main()
