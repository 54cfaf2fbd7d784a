"""Mapping llm-data-gen configs (small inline ones shaped per docs/llm-data-gen-format.md) onto documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from llmts_templates.checks import validate_document
from llmts_templates.domain.llm_data_gen import (
    BAD_HEADING,
    DEFAULT_SYSTEM,
    GOOD_HEADING,
    LlmDataGenError,
    escape_jinja,
    map_config,
)
from llmts_templating import PromptRenderer, build_context

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def json_config() -> dict[str, Any]:
    return {
        "meta": {"name": "Quiz", "version": "1.0", "description": "Вопросы"},
        "api": {
            "provider": "openrouter",
            "model": "openai/gpt-4o-mini",
            "temperature": 0.6,
            "maxTokens": 4000,
            "batchDelay": 1000,
            "apiKey": "sk-or-secret",
        },
        "output": {
            "type": "array",
            "outputPath": "./out/",
            "fileNameTemplate": "{theme_translit}_{date}.json",
        },
        "schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "id": {"type": "string", "x-llm-generate": {"template": "{theme_translit}_{index}"}},
                "text": {
                    "type": "string",
                    "x-llm-generate": {
                        "prompt": "Вопрос на тему '{theme}'",
                        "minLength": 10,
                        "maxLength": 300,
                        "requirements": ["НЕ содержать ответ"],
                    },
                },
                "correct": {
                    "type": "integer",
                    "x-llm-generate": {"description": "Индекс", "range": [0, "{answers_minus_1}"]},
                },
                "difficulty": {
                    "type": "integer",
                    "x-llm-generate": {"value": "{difficulty_num}", "mapping": {"easy": 1, "hard": 3}},
                },
                "plain": {"type": "boolean"},
            },
            "required": ["id", "text"],
        },
        "prompts": {"system": "Ты эксперт.", "examples": {"good": ["хорошо"], "bad": ["плохо"]}},
        "generation": {
            "tasks": [
                {"theme": "Аниме", "count": 2, "difficulty": "easy", "answers": 4},
                {"theme": "PC игры", "count": 1, "difficulty": "hard", "answers": 3},
            ]
        },
    }


def render(doc: Any, task: dict[str, Any], task_index: int = 0) -> tuple[str, str]:
    ctx = build_context(index=task_index, task_index=task_index, job_id="j", now=NOW, task=task)
    out = PromptRenderer().render_prompts(doc.prompts.system, doc.prompts.user, ctx)
    return out.system, out.user


def test_json_config_maps_meta_api_output_tasks() -> None:
    result = map_config(json_config())
    d = result.document
    assert d.name == "Quiz"
    assert d.description == "Вопросы"
    assert d.output.format == "json"
    assert d.validation.mode == "strict"
    assert d.model is not None
    assert (d.model.provider, d.model.id, d.model.temperature, d.model.max_tokens) == (
        "openrouter",
        "openai/gpt-4o-mini",
        0.6,
        4000,
    )
    assert d.tasks == json_config()["generation"]["tasks"]
    origin = d.metadata["llm_data_gen"]
    assert origin["meta"]["version"] == "1.0"
    assert origin["api"] == {"provider": "openrouter", "batchDelay": 1000}
    assert origin["output"]["fileNameTemplate"] == "{theme_translit}_{date}.json"
    assert any("apiKey" in n for n in result.notes)
    assert "sk-or-secret" not in str(d.stored())


def test_hints_leave_the_schema_and_become_prompt_text() -> None:
    d = map_config(json_config()).document
    assert d.json_schema is not None
    assert "x-llm-generate" not in str(d.json_schema)
    assert d.json_schema["properties"]["text"] == {"type": "string"}
    system, user = render(d, json_config()["generation"]["tasks"][1], task_index=0)
    assert system.startswith("Ты эксперт.")
    assert GOOD_HEADING in system
    assert "1. хорошо" in system
    assert BAD_HEADING in system
    assert user.startswith("Сгенерируй JSON объект со следующей структурой:")
    assert '"id": "pc_igry_0"' in user  # template resolved; {index} is the index within the task
    assert '"text": "Вопрос на тему \'PC игры\'"' in user
    assert '"plain": "<boolean>"' in user
    assert "длина от 10 до 300 символов" in user
    assert "НЕ содержать ответ" in user
    assert "диапазон значений: от 0 до 2" in user  # {answers_minus_1} with answers=3
    assert 'значение строго "3"' in user  # {difficulty_num} for hard
    assert "- theme: PC игры" in user
    assert "- answers: 3" in user
    assert user.rstrip().endswith("Важно: возвращай только валидный JSON без дополнительного текста.")


def test_mapped_document_validates() -> None:
    report = validate_document(map_config(json_config()).document)
    assert report.valid, report.errors


def test_text_config_uses_user_prompt_and_no_validation() -> None:
    cfg = {
        "meta": {"name": "Emails"},
        "api": {"model": "openrouter/auto", "temperature": 0.7, "maxTokens": 1000},
        "output": {"format": "text", "fileExtension": ".txt"},
        "prompts": {
            "system": "You write emails.",
            "userPrompt": "Write a {type} email #{index}, tone {tone}.",
        },
        "generation": {"tasks": [{"type": "business", "tone": "formal", "count": 2}]},
    }
    d = map_config(cfg).document
    assert d.output.format == "text"
    assert d.json_schema is None
    assert d.validation.mode == "none"
    _, user = render(d, cfg["generation"]["tasks"][0], task_index=1)  # type: ignore[index]
    assert user == "Write a business email #1, tone formal."


def test_defaults_when_keys_are_missing() -> None:
    result = map_config({"schema": {"type": "object", "properties": {"a": {"type": "string"}}}})
    d = result.document
    assert d.name == "llm-data-gen import"
    assert d.prompts.system == DEFAULT_SYSTEM
    assert d.model is not None
    assert (d.model.id, d.model.temperature, d.model.max_tokens) == ("openrouter/auto", 0.6, 4000)
    assert any("tasks" in n for n in result.notes)


def test_jinja_delimiters_in_imported_text_stay_literal() -> None:
    cfg = {
        "output": {"format": "text"},
        "prompts": {"userPrompt": "Use {{braces}} and {% this %} and {# that #} for {topic}"},
        "generation": {"tasks": [{"topic": "t", "count": 1}]},
    }
    d = map_config(cfg).document
    _, user = render(d, {"topic": "t"})
    assert user == "Use {{braces}} and {% this %} and {# that #} for t"
    assert escape_jinja("plain {x}") == "plain {x}"


def test_json_userprompt_is_ignored_with_a_note() -> None:
    cfg = json_config()
    cfg["prompts"]["userPrompt"] = "ignored {theme}"
    result = map_config(cfg)
    assert "ignored" not in result.document.prompts.user
    assert result.document.metadata["llm_data_gen"]["user_prompt"] == "ignored {theme}"
    assert any("userPrompt" in n for n in result.notes)


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ([1, 2], ""),
        ({"output": {"format": "csv"}}, "output.format"),
        ({"output": {"format": "json"}}, "schema"),
        ({"schema": {"properties": {}}}, "schema"),
        ({"schema": {"type": "object"}, "generation": {"tasks": ["x"]}}, "generation.tasks[0]"),
        ({"api": "nope", "schema": {"type": "object"}}, "api"),
    ],
)
def test_unmappable_configs(config: Any, path: str) -> None:
    with pytest.raises(LlmDataGenError) as exc:
        map_config(config)
    assert exc.value.path == path


def test_every_secret_looking_field_is_scrubbed_and_reported() -> None:
    # issue 14 finding 11: only api.apiKey was dropped; api_key and headers.Authorization stayed in metadata
    config = json_config()
    config["api"].update(
        {
            "api_key": "k-111",
            "headers": {"Authorization": "Bearer abc", "X-Title": "my app"},
            "auth": {"clientSecret": "s-222", "user": "ada"},
            "proxy": {"url": "http://proxy", "Password": "p-333"},
            "extra": [{"accessToken": "t-444"}, "sk-or-v1-0123456789abcdef"],
            "retryAttempts": 3,
        }
    )
    config["meta"]["author"] = "Ada"
    config["meta"]["SESSION_ID"] = "z-555"
    config["output"]["cookie"] = "c-666"
    result = map_config(config)
    stored = str(result.document.stored())
    for secret in ("k-111", "Bearer abc", "my app", "s-222", "p-333", "t-444", "sk-or-v1", "z-555", "c-666"):
        assert secret not in stored
    origin = result.document.metadata["llm_data_gen"]
    assert origin["api"]["retryAttempts"] == 3
    assert origin["api"]["proxy"] == {"url": "http://proxy"}
    assert origin["meta"]["author"] == "Ada"  # "author" is not "auth"
    dropped = sorted(n.split(" ", 1)[0] for n in result.notes if "looks like a secret" in n)
    assert dropped == sorted(
        [
            "api.apiKey",
            "api.api_key",
            "api.headers.Authorization",
            "api.headers.X-Title",
            "api.auth",
            "api.proxy.Password",
            "api.extra[0].accessToken",
            "api.extra[1]",
            "meta.SESSION_ID",
            "output.cookie",
        ]
    )
    assert all("k-111" not in n and "Bearer" not in n for n in result.notes)
