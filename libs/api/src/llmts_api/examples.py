"""Examples of the API's bodies and answers, shown by the OpenAPI documents (``json_schema_extra``).

One walk-through: Ada imports the quiz example (template ``t_3f9a``), runs job ``j_8c1e`` on
``openai/gpt-4o-mini`` and exports it as ``e_51b2``. Each example is valid for its model (a unit test validates
every model's examples), so a changed model that its example no longer fits fails there.
"""

from __future__ import annotations

from typing import Any

CREATED = "2026-12-06T21:14:03Z"
STARTED = "2026-12-06T21:14:04Z"
FINISHED = "2026-12-06T21:14:31Z"
USER_ID = "u_5d2c0a"
TEMPLATE_ID = "t_3f9a"
JOB_ID = "j_8c1e"
EXPORT_ID = "e_51b2"
MODEL_ID = "openai/gpt-4o-mini"
TOKEN = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1XzVkMmMwYSJ9.c2lnbmF0dXJl"  # noqa: S105 -- a made-up example token
REFRESH = "rt_Jk2vQ9xq7N1bWmZfT3cYpA"

QUIZ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["question", "options", "answer"],
    "properties": {
        "question": {"type": "string"},
        "options": {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 4},
        "answer": {"type": "string", "pattern": "^[A-D]$"},
    },
}
QUIZ_ITEM: dict[str, Any] = {
    "question": "Which body's gravity mainly causes the tides?",
    "options": ["A) the Sun", "B) the Moon", "C) Jupiter", "D) Mars"],
    "answer": "B",
}
USAGE: dict[str, Any] = {"prompt_tokens": 412, "completion_tokens": 96, "cost_usd": 0.0001194}

# ------------------------------------------------------------------------------------------------ auth
USER: dict[str, Any] = {
    "id": USER_ID,
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "created_at": CREATED,
}
USER_CREATE: dict[str, Any] = {
    "email": "ada@example.com",
    "password": "correct horse battery staple",
    "name": "Ada Lovelace",
}
LOGIN: dict[str, Any] = {"email": "ada@example.com", "password": "correct horse battery staple"}
REFRESH_REQUEST: dict[str, Any] = {"refresh_token": REFRESH}
TOKEN_PAIR: dict[str, Any] = {
    "access_token": TOKEN,
    "refresh_token": REFRESH,
    "token_type": "bearer",
    "expires_in": 900,
}
JWKS: dict[str, Any] = {
    "keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "k1"}
    ]
}
SESSION: dict[str, Any] = {
    "user_id": USER_ID,
    "email": "ada@example.com",
    "token_id": "jti_0b7e44",
    "expires_at": "2026-12-06T21:29:03Z",
}
CHANGE_PASSWORD: dict[str, Any] = {
    "current_password": "correct horse battery staple",
    "new_password": "a new and long passphrase",
}
DELETE_ACCOUNT: dict[str, Any] = {"password": "correct horse battery staple"}
ADMIN_USER: dict[str, Any] = {
    **USER,
    "role": "user",
    "disabled": False,
    "has_password": True,
    "providers": ["github"],
}
ADMIN_USERS: dict[str, Any] = {"items": [ADMIN_USER], "total": 1, "offset": 0, "limit": 50}
ROLE_UPDATE: dict[str, Any] = {"role": "admin"}

# ------------------------------------------------------------------------------------------------ quotas
QUOTA_OVERRIDE: dict[str, Any] = {"max_items_per_day": 50_000, "budget_usd": 25.0}
QUOTA_LIMITS: dict[str, Any] = {
    "max_items_per_job": 10_000,
    "max_active_jobs": 5,
    "max_items_per_day": 50_000,
    "budget_usd": 25.0,
    "budget_period": "month",
}
QUOTA: dict[str, Any] = {"user_id": USER_ID, "overrides": QUOTA_OVERRIDE, "effective": QUOTA_LIMITS}
USAGE_REPORT: dict[str, Any] = {
    "user_id": USER_ID,
    "limits": QUOTA_LIMITS,
    "budget": {
        "limit": 25.0,
        "used": 0.42,
        "remaining": 24.58,
        "resets_at": "2027-01-01T00:00:00Z",
        "spent_usd": 0.37,
        "reserved_usd": 0.05,
        "period": "month",
    },
    "items_today": {"limit": 50_000, "used": 120, "remaining": 49_880, "resets_at": "2026-12-07T00:00:00Z"},
    "active_jobs": {"limit": 5, "used": 1, "remaining": 4, "resets_at": None},
    "open_jobs": [{"job_id": JOB_ID, "reserved_usd": 0.05, "items": 20, "reserved_at": CREATED}],
}

# ------------------------------------------------------------------------------------------------ catalog
MODEL: dict[str, Any] = {
    "id": MODEL_ID,
    "provider": "openrouter",
    "name": "OpenAI: GPT-4o-mini",
    "context_length": 128_000,
    "max_completion_tokens": 16_384,
    "input_modalities": ["text", "image"],
    "output_modalities": ["text"],
    "pricing": {"prompt": "0.15", "completion": "0.6", "request": "0", "web_search": None},
    "free": False,
    "online": False,
    "structured_output": True,
    "tools": True,
    "created": "2024-07-18T00:00:00Z",
    "stale": False,
    "last_synced_at": "2026-12-06T21:00:00Z",
}
MODELS: dict[str, Any] = {"total": 1, "limit": 50, "offset": 0, "items": [MODEL]}
PROVIDERS: dict[str, Any] = {
    "items": [
        {
            "name": "openrouter",
            "enabled": True,
            "configured": True,
            "status": "ok",
            "stale": False,
            "model_count": 309,
            "last_synced_at": "2026-12-06T21:00:00Z",
            "last_attempt_at": "2026-12-06T21:00:00Z",
            "last_error": None,
        }
    ]
}
PROVIDER_TEST_REQUEST: dict[str, Any] = {"provider": "ollama"}
PROVIDER_TEST: dict[str, Any] = {
    "provider": "ollama",
    "configured": True,
    "reachable": True,
    "latency_ms": 3.8,
    "key_valid": None,
    "version": "0.5.7",
    "error": None,
}
SYNC_REQUEST: dict[str, Any] = {"provider": "openrouter"}
SYNC_RESULTS: dict[str, Any] = {
    "items": [
        {
            "provider": "openrouter",
            "ok": True,
            "total": 309,
            "added": 2,
            "removed": 1,
            "changed": 5,
            "event_recorded": True,
            "error": None,
        }
    ]
}

# ------------------------------------------------------------------------------------------------ templates
TEMPLATE_DOCUMENT: dict[str, Any] = {
    "name": "Quiz questions",
    "description": "Multiple-choice questions, one correct answer.",
    "category": "education",
    "tags": ["quiz"],
    "visibility": "private",
    "output": {"format": "json"},
    "prompts": {
        "system": "You write clear multiple-choice questions.",
        "user": "Write a quiz question about {{ topic }} with four options A-D.",
    },
    "schema": QUIZ_SCHEMA,
    "validation": {"mode": "strict", "rules": [{"path": "question", "min_length": 10, "max_length": 300}]},
    "variables": {},
    "tasks": [{"topic": "astronomy", "count": 5}, {"topic": "tides", "count": 5}],
    "model": {"id": MODEL_ID, "temperature": 0.7, "fallback": []},
    "metadata": {},
}
TEMPLATE: dict[str, Any] = {
    **TEMPLATE_DOCUMENT,
    "id": TEMPLATE_ID,
    "owner_id": USER_ID,
    "version": 2,
    "created_at": CREATED,
    "updated_at": "2026-12-06T21:20:11Z",
}
TEMPLATE_SUMMARY: dict[str, Any] = {
    "id": TEMPLATE_ID,
    "owner_id": USER_ID,
    "version": 2,
    "name": "Quiz questions",
    "description": "Multiple-choice questions, one correct answer.",
    "category": "education",
    "tags": ["quiz"],
    "visibility": "private",
    "output_format": "json",
    "model_id": MODEL_ID,
    "created_at": CREATED,
    "updated_at": "2026-12-06T21:20:11Z",
}
TEMPLATES: dict[str, Any] = {"items": [TEMPLATE_SUMMARY], "total": 1, "limit": 20, "offset": 0}
VERSION_SUMMARY: dict[str, Any] = {
    "version": 2,
    "created_at": "2026-12-06T21:20:11Z",
    "created_by": USER_ID,
    "name": "Quiz questions",
}
VERSIONS: dict[str, Any] = {
    "template_id": TEMPLATE_ID,
    "current_version": 2,
    "items": [VERSION_SUMMARY, {**VERSION_SUMMARY, "version": 1, "created_at": CREATED}],
    "total": 2,
    "limit": 50,
    "offset": 0,
}
VERSION: dict[str, Any] = {
    "template_id": TEMPLATE_ID,
    "version": 2,
    "created_at": "2026-12-06T21:20:11Z",
    "created_by": USER_ID,
    "document": TEMPLATE_DOCUMENT,
}
TEMPLATE_DIFF: dict[str, Any] = {
    "from_version": 1,
    "to_version": 2,
    "changed": True,
    "prompts": {
        "system": {"changed": False, "unified": []},
        "user": {
            "changed": True,
            "unified": [
                "--- v1",
                "+++ v2",
                "@@ -1 +1 @@",
                "-Write a quiz question about {{ topic }}.",
                "+Write a quiz question about {{ topic }} with four options A-D.",
            ],
        },
    },
    "schema": [{"path": "properties.answer.pattern", "op": "added", "from": None, "to": "^[A-D]$"}],
    "rules": {"changed": False, "added": [], "removed": [], "mode": None},
    "model": [{"path": "temperature", "op": "changed", "from": 1.0, "to": 0.7}],
    "other": [],
}
VALIDATE_DOCUMENT: dict[str, Any] = {
    "name": "Broken quiz",
    "prompts": {"user": "Hello {{ product \n {% for %}"},
    "schema": {"type": "object"},
}
VALIDATION_REPORT: dict[str, Any] = {
    "valid": False,
    "errors": [
        {"path": "prompts.user", "message": "unexpected '}'", "line": 1, "column": 17, "kind": "syntax"}
    ],
    "warnings": [],
}
PREVIEW_REQUEST: dict[str, Any] = {"template_id": TEMPLATE_ID, "variables": {"topic": "tides"}, "count": 100}
RENDERED_USER = "Write a quiz question about tides with four options A-D."
PROVIDER_BODY: dict[str, Any] = {
    "model": MODEL_ID,
    "messages": [
        {"role": "system", "content": "You write clear multiple-choice questions."},
        {"role": "user", "content": RENDERED_USER},
    ],
    "temperature": 0.7,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "item", "strict": True, "schema": QUIZ_SCHEMA},
    },
}
ESTIMATE: dict[str, Any] = {
    "method": "chars/4",
    "currency": "USD",
    "count": 100,
    "attempts": 3,
    "prompt_tokens_per_call": 96,
    "max_completion_tokens": 256,
    "max_tokens_assumed": True,
    "low": {"calls": 100, "prompt_tokens": 9600, "completion_tokens": 2000, "cost_usd": 0.00264},
    "high": {"calls": 300, "prompt_tokens": 28800, "completion_tokens": 76800, "cost_usd": 0.0504},
    "prices_per_million": {"prompt": "0.15", "completion": "0.6", "request": "0"},
    "per_item": {"low": 0.0000264, "high": 0.000504},
    "total": {"low": 0.00264, "high": 0.0504},
}
PREVIEW: dict[str, Any] = {
    "template_id": TEMPLATE_ID,
    "version": 2,
    "index": 0,
    "task_index": 0,
    "task": {"topic": "tides", "count": 5},
    "rendered": {"system": "You write clear multiple-choice questions.", "user": RENDERED_USER},
    "provider": "openrouter",
    "model": {"id": MODEL_ID, "temperature": 0.7, "fallback": []},
    "request_body": PROVIDER_BODY,
    "token_estimate": {"prompt_tokens": 96, "max_completion_tokens": 256, "method": "chars/4"},
    "cost_estimate": {**ESTIMATE, "model": MODEL_ID},
    "notes": [],
}
EXAMPLE_TEMPLATE: dict[str, Any] = {
    "id": "quiz",
    "name": "Quiz questions",
    "description": "Multiple-choice questions, one correct answer.",
    "category": "education",
    "tags": ["quiz"],
    "output_format": "json",
    "document": TEMPLATE_DOCUMENT,
}
EXAMPLES: dict[str, Any] = {"items": [EXAMPLE_TEMPLATE], "total": 1}
IMPORT_OPTIONS: dict[str, Any] = {"name": "My quiz", "visibility": "private"}
LLM_DATA_GEN_CONFIG: dict[str, Any] = {
    "meta": {"name": "Quiz questions", "version": "1.0"},
    "api": {"provider": "openrouter", "model": MODEL_ID, "temperature": 0.7},
    "output": {"format": "json", "type": "array"},
    "schema": {
        "type": "object",
        "properties": {
            "question": {"type": "string", "minLength": 10},
            "answer": {"type": "string", "enum": ["A", "B", "C", "D"]},
        },
        "required": ["question", "answer"],
    },
    "prompts": {"system": "You write quiz questions.", "user": "A question about {topic}."},
    "generation": {"tasks": [{"topic": "astronomy", "count": 5}]},
}
LLM_DATA_GEN_IMPORT: dict[str, Any] = {
    "template": TEMPLATE,
    "notes": ["api.provider 'openrouter' kept as the model's provider"],
}

# ------------------------------------------------------------------------------------------------ generation
GENERATION_CREATE: dict[str, Any] = {
    "template_id": TEMPLATE_ID,
    "count": 20,
    "variables": {"audience": "high school"},
    "model": {"id": MODEL_ID, "temperature": 0.7, "fallback": [{"provider": "ollama", "id": "qwen2.5:0.5b"}]},
    "concurrency": 8,
    "max_cost_usd": 0.5,
}
BATCH_CREATE: dict[str, Any] = {
    "jobs": [GENERATION_CREATE, {"template_id": TEMPLATE_ID, "count": 5, "variables": {"audience": "adults"}}]
}
JOB_LINKS: dict[str, Any] = {
    "self": f"/generate/{JOB_ID}",
    "events": f"/generate/{JOB_ID}/events",
    "websocket": f"/ws/jobs/{JOB_ID}",
    "result": f"/generate/{JOB_ID}/result",
}
GENERATION_ACCEPTED: dict[str, Any] = {"job_id": JOB_ID, "status": "queued", "links": JOB_LINKS}
BATCH_ACCEPTED: dict[str, Any] = {
    "jobs": [
        GENERATION_ACCEPTED,
        {
            "job_id": "j_9d20",
            "status": "queued",
            "links": {k: v.replace(JOB_ID, "j_9d20") for k, v in JOB_LINKS.items()},
        },
    ]
}
CANCEL_ACCEPTED: dict[str, Any] = {"job_id": JOB_ID, "status": "cancelling"}
JOB: dict[str, Any] = {
    "job_id": JOB_ID,
    "status": "completed",
    "template": {"id": TEMPLATE_ID, "version": 2, "name": "Quiz questions", "output_format": "json"},
    "model": {
        "provider": "openrouter",
        "id": MODEL_ID,
        "temperature": 0.7,
        "max_tokens": None,
        "fallback": [],
    },
    "requested": 20,
    "counts": {
        "requested": 20,
        "succeeded": 20,
        "rejected": 0,
        "attempts": 21,
        "item_attempts": 21,
        "in_flight": None,
    },
    "usage": {"prompt_tokens": 8652, "completion_tokens": 2016, "cost_usd": 0.0025074},
    "stop_reason": None,
    "progress": {"percent": 100.0, "eta_seconds": 0.0},
    "error": None,
    "timings": {
        "created_at": CREATED,
        "queued_at": CREATED,
        "started_at": STARTED,
        "finished_at": FINISHED,
        "duration_seconds": 27.0,
    },
    "model_switches": [],
}
ITEM: dict[str, Any] = {
    "index": 0,
    "status": "accepted",
    "data": QUIZ_ITEM,
    "model": {"provider": "openrouter", "id": MODEL_ID},
    "inputs": {"target": 0, "task": 0, "task_index": 0, "row": {"topic": "astronomy", "count": 5}},
    "attempts": 1,
    "usage": USAGE,
}
RESULT: dict[str, Any] = {"items": [ITEM], "total": 20, "limit": 100, "offset": 0}
GENERATION_PREVIEW: dict[str, Any] = {
    "items": [
        {
            "index": 0,
            "system": "You write clear multiple-choice questions.",
            "user": RENDERED_USER,
            "provider": "openrouter",
            "request_body": PROVIDER_BODY,
        }
    ],
    "count": 100,
    "model": {
        "provider": "openrouter",
        "id": MODEL_ID,
        "temperature": 0.7,
        "max_tokens": None,
        "fallback": [],
    },
    "estimate": ESTIMATE,
}
HISTORY: dict[str, Any] = {
    "items": [JOB],
    "total": 1,
    "limit": 20,
    "offset": 0,
    "totals": {"jobs": 1, "items": 20, "rejected": 0, "attempts": 21, "usage": JOB["usage"]},
}
HISTORY_JOB: dict[str, Any] = {
    **JOB,
    "attempts": {
        "total": 21,
        "by_outcome": {
            "ok": {"count": 20, "prompt_tokens": 8240, "completion_tokens": 1920, "cost_usd": 0.002388},
            "invalid": {"count": 1, "prompt_tokens": 412, "completion_tokens": 96, "cost_usd": 0.0001194},
        },
        "by_model": [
            {
                "provider": "openrouter",
                "model": MODEL_ID,
                "calls": 21,
                "valid": 20,
                "prompt_tokens": 8652,
                "completion_tokens": 2016,
                "cost_usd": 0.0025074,
            }
        ],
        "items": [
            {"slot": 0, "call": 0, "item_attempt": 1, "kind": "generate", "outcome": "ok", "latency_ms": 812}
        ],
    },
}
SSE_EVENTS = (
    f'event: snapshot\ndata: {{"type": "snapshot", "data": {{"job_id": "{JOB_ID}", "status": "running"}}}}\n\n'
    f'event: item_generated\nid: 7\ndata: {{"id": "7", "type": "generation.item_generated", '
    f'"time": "{STARTED}", "data": {{"job_id": "{JOB_ID}", "index": 0}}}}\n\n'
    f'event: completed\nid: 31\ndata: {{"id": "31", "type": "generation.completed", "time": "{FINISHED}", '
    f'"data": {{"job_id": "{JOB_ID}", "status": "completed"}}}}\n\n'
)

# ------------------------------------------------------------------------------------------------ exports
EXPORT_CREATE: dict[str, Any] = {"job_id": JOB_ID, "format": "csv", "options": {"csv_delimiter": ";"}}
EXPORT: dict[str, Any] = {
    "export_id": EXPORT_ID,
    "job_id": JOB_ID,
    "format": "csv",
    "options": {"csv_delimiter": ";"},
    "status": "ready",
    "bytes": 5120,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "items": 20,
    "filename": "quiz-questions-2026-12-06-8c1e.csv",
    "content_type": "text/csv; charset=utf-8",
    "created_at": FINISHED,
    "finished_at": "2026-12-06T21:14:32Z",
    "links": {"self": f"/exports/{EXPORT_ID}", "download": f"/exports/{EXPORT_ID}/download"},
}
EXPORTS: dict[str, Any] = {"items": [EXPORT], "total": 1, "limit": 100, "offset": 0}
EXPORT_ACCEPTED: dict[str, Any] = {
    "export_id": EXPORT_ID,
    "status": "queued",
    "links": {"self": f"/exports/{EXPORT_ID}", "download": None},
}
FACETS: dict[str, Any] = {
    "items": [{"name": "education", "count": 3}, {"name": "Marketing", "count": 1}],
    "total": 2,
}
