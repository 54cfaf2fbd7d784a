"""Map an llm-data-gen config file (as is) onto a template document v1.

Format: ``docs/llm-data-gen-format.md`` (the shared one). Mapping, field by field:

- ``meta.name`` / ``meta.description`` → ``name`` / ``description``; ``meta.version`` → ``metadata``.
- ``api.model`` (default ``openrouter/auto``), ``api.temperature`` (default 0.6), ``api.maxTokens`` (default 4000)
  → ``model``; ``api.provider`` ollama → provider ``ollama``, else ``openrouter``. Retry/timeout/batch settings are
  kept in ``metadata.llm_data_gen.api``; secret-looking fields (``apiKey``, ``api_key``, ``headers.*``, tokens,
  passwords … at any depth of ``meta``/``api``/``output``, see ``domain/scrub.py``) are dropped and each dropped
  path is named in the import's ``notes`` (secrets are never stored in a template).
- ``output.format`` → ``output.format`` (default json); the file-writing keys (type, outputPath,
  fileNameTemplate, fileExtension …) are kept in ``metadata.llm_data_gen.output``.
- ``schema`` → ``schema`` with every ``x-llm-generate`` removed; the hints are turned into prompt text instead:
  the user prompt shows the item structure the way llm-data-gen does (a field's ``template``/``prompt``/
  ``description`` as its value, otherwise ``<type>``) followed by a per-field requirements list for what
  llm-data-gen enforces after the answer or never sends (``value``, ``template``, ``mapping``, min/max length,
  ``requirements``, ``count``/min/max items, ``range``).
- ``prompts.system`` (default ``Generate valid JSON data according to the schema.``) plus
  ``prompts.examples.good/bad`` with llm-data-gen's Russian headings → ``prompts.system``.
- ``prompts.userPrompt`` → ``prompts.user`` for text output (as llm-data-gen, it is ignored for json output;
  a note says so).
- ``generation.tasks`` → ``tasks`` unchanged (each row's ``count`` is the number of requests of that task).
- validation: ``strict`` for json (llm-data-gen validates the whole schema with Ajv), ``none`` for text.

Placeholders: single-brace ``{topic}``, ``{theme_translit}``, ``{answers_minus_1}`` … are left in place; the
renderer substitutes them with llm-data-gen's rules (unknown ones stay verbatim). ``{index}`` is rewritten to
``{task_index}`` because llm-data-gen's index restarts with every task, and ``{now}`` to ``{datetime}``. Jinja
delimiters that occur in the imported literal text (``{{``, ``{%``, ``{#``) are escaped so they stay literal.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field

from llmts_templates.domain.document import TemplateDocument
from llmts_templates.domain.scrub import scrub_secrets

HINT_KEY = "x-llm-generate"
DEFAULT_SYSTEM = "Generate valid JSON data according to the schema."
DEFAULT_MODEL = "openrouter/auto"
STRUCTURE_HEADER = "Сгенерируй JSON объект со следующей структурой:"
STRUCTURE_FOOTER = "Важно: возвращай только валидный JSON без дополнительного текста."
GOOD_HEADING = "Примеры хороших результатов:"
BAD_HEADING = "Примеры плохих результатов (избегай таких):"

_JINJA_OPEN = re.compile(r"\{([{%#])")
_IDENT = re.compile(r"^[^\W\d]\w*$")
_JINJA_WORDS = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "for", "true", "false", "none", "True", "False", "None"}
)


class ImportResult(BaseModel):
    document: TemplateDocument
    notes: list[str] = Field(default_factory=list)


class LlmDataGenError(ValueError):
    """The config cannot be mapped (not an object, json output without a schema, …)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


def escape_jinja(text: str) -> str:
    """Make ``{{``, ``{%`` and ``{#`` literal; single-brace placeholders are untouched."""
    return _JINJA_OPEN.sub(lambda m: "{{ '{" + m[1] + "' }}", text)


def convert_placeholders(text: str) -> str:
    """llm-data-gen text → our template text: ``{index}`` → ``{task_index}``, ``{now}`` → ``{datetime}``."""
    return escape_jinja(text).replace("{index}", "{task_index}").replace("{now}", "{datetime}")


def _type_description(schema: dict[str, Any]) -> str:
    for key, sep in (("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")):
        options = schema.get(key)
        if isinstance(options, list):
            return sep.join(str(o["type"]) for o in options if isinstance(o, dict) and o.get("type"))
    t = schema.get("type")
    if isinstance(t, list):
        return " | ".join(str(x) for x in t)
    return str(t) if t else "any"


def _field_description(hint: dict[str, Any], schema: dict[str, Any]) -> str:
    for key in ("template", "prompt", "description"):
        value = hint.get(key)
        if isinstance(value, str) and value:
            return value
    return f"<{_type_description(schema)}>"


def _structure(schema: Any) -> Any:
    """llm-data-gen's ``_schemaToStructure`` (promptBuilder.js:172-194)."""
    if not isinstance(schema, dict):
        return "<any>"
    props = schema.get("properties")
    if schema.get("type") == "object" and isinstance(props, dict):
        out: dict[str, Any] = {}
        for key, prop in props.items():
            if isinstance(prop, dict) and isinstance(prop.get(HINT_KEY), dict):
                out[key] = _field_description(prop[HINT_KEY], prop)
            else:
                out[key] = _structure(prop)
        return out
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return [_structure(schema["items"])]
    if isinstance(schema.get(HINT_KEY), dict):
        return _field_description(schema[HINT_KEY], schema)
    return f"<{_type_description(schema)}>"


def _hint_lines(hint: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if isinstance(hint.get("value"), str | int | float) and not isinstance(hint.get("value"), bool):
        lines.append(f'значение строго "{hint["value"]}"')
    elif isinstance(hint.get("template"), str):
        lines.append(f'значение строго "{hint["template"]}"')
    mapping = hint.get("mapping")
    if isinstance(mapping, dict) and mapping:
        pairs = ", ".join(f"{k} → {json.dumps(v, ensure_ascii=False)}" for k, v in mapping.items())
        lines.append(f"соответствие значений: {pairs}")
    lo, hi = hint.get("minLength"), hint.get("maxLength")
    if lo is not None or hi is not None:
        if lo is not None and hi is not None:
            lines.append(f"длина от {lo} до {hi} символов")
        elif lo is not None:
            lines.append(f"длина не меньше {lo} символов")
        else:
            lines.append(f"длина не больше {hi} символов")
    if hint.get("count") is not None:
        lines.append(f"количество элементов: {hint['count']}")
    lo, hi = hint.get("minItems"), hint.get("maxItems")
    if lo is not None or hi is not None:
        lines.append(f"элементов от {lo if lo is not None else 0} до {hi if hi is not None else '∞'}")
    rng = hint.get("range")
    if isinstance(rng, list) and len(rng) == 2:
        lines.append(f"диапазон значений: от {rng[0]} до {rng[1]}")
    reqs = hint.get("requirements")
    if isinstance(reqs, list):
        lines.extend(str(r) for r in reqs if isinstance(r, str | int | float))
    return lines


def _collect_hints(schema: Any, path: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    if isinstance(schema, list):
        for item in schema:
            _collect_hints(item, path, out)
        return
    if not isinstance(schema, dict):
        return
    hint = schema.get(HINT_KEY)
    if isinstance(hint, dict) and path:
        out.append((path, hint))
    props = schema.get("properties")
    if isinstance(props, dict):
        for key, prop in props.items():
            _collect_hints(prop, f"{path}.{key}" if path else str(key), out)
    items = schema.get("items")
    if isinstance(items, dict | list):
        _collect_hints(items, f"{path}[]" if path else "[]", out)
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list):
            _collect_hints(schema[key], path, out)


def strip_hints(schema: Any) -> Any:
    """The schema without any ``x-llm-generate`` (it is prompt text now, not a schema keyword)."""
    if isinstance(schema, dict):
        return {k: strip_hints(v) for k, v in schema.items() if k != HINT_KEY}
    if isinstance(schema, list):
        return [strip_hints(v) for v in schema]
    return schema


def _task_keys(tasks: list[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for task in tasks:
        for key in task:
            if key not in keys and _IDENT.match(key) and key not in _JINJA_WORDS:
                keys.append(key)
    return keys


def _context_block(keys: list[str]) -> str:
    """The ``Контекст:`` list llm-data-gen appends: one line per task field (only when the task has it)."""
    out = "Контекст:\n"
    for k in keys:
        out += f"{{% if {k} is defined %}}- {k}: {{{k}}}\n{{% endif %}}"
    return out + "- index: {task_index}\n- date: {date}"


def _user_prompt_json(schema: dict[str, Any], keys: list[str]) -> str:
    structure = json.dumps(_structure(schema), ensure_ascii=False, indent=2)
    hints: list[tuple[str, dict[str, Any]]] = []
    _collect_hints(schema, "", hints)
    parts = [STRUCTURE_HEADER, "", convert_placeholders(structure)]
    req_lines = []
    for path, hint in hints:
        lines = _hint_lines(hint)
        if lines:
            req_lines.append(f"- {path}: " + "; ".join(convert_placeholders(x) for x in lines))
    if req_lines:
        parts += ["", "Требования к полям:", *req_lines]
    parts += ["", _context_block(keys), "", STRUCTURE_FOOTER]
    return "\n".join(parts)


def _system_prompt(prompts: dict[str, Any]) -> str:
    system = prompts.get("system")
    text = system if isinstance(system, str) and system else DEFAULT_SYSTEM
    examples = prompts.get("examples") if isinstance(prompts.get("examples"), dict) else {}
    assert isinstance(examples, dict)
    for key, heading in (("good", GOOD_HEADING), ("bad", BAD_HEADING)):
        items = examples.get(key)
        if isinstance(items, list) and items:
            text += f"\n\n{heading}\n" + "".join(f"{i}. {ex}\n" for i, ex in enumerate(items, 1))
    return escape_jinja(text)


def _num(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LlmDataGenError(f"'{key}' must be an object", key)
    return value


def _format_and_schema(config: dict[str, Any], output: dict[str, Any]) -> tuple[str, Any]:
    fmt = output.get("format", "json")
    if fmt not in ("json", "text"):
        raise LlmDataGenError("output.format must be 'json' or 'text'", "output.format")
    schema = config.get("schema")
    if fmt == "json":
        if not isinstance(schema, dict) or not schema.get("type"):
            raise LlmDataGenError("json output needs a 'schema' object with a 'type'", "schema")
    elif schema is not None and not isinstance(schema, dict):
        raise LlmDataGenError("'schema' must be an object", "schema")
    return str(fmt), schema


def _tasks(generation: dict[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    raw_tasks = generation.get("tasks")
    tasks: list[dict[str, Any]] = []
    if isinstance(raw_tasks, list):
        for i, task in enumerate(raw_tasks):
            if not isinstance(task, dict):
                raise LlmDataGenError("every task is an object", f"generation.tasks[{i}]")
            tasks.append(dict(task))
    if not tasks:
        notes.append("generation.tasks is missing or empty (llm-data-gen refuses to run such a config)")
    return tasks


def _user_prompt(fmt: str, schema: Any, prompts: dict[str, Any], keys: list[str], notes: list[str]) -> str:
    if fmt == "json":
        assert isinstance(schema, dict)
        if isinstance(prompts.get("userPrompt"), str):
            notes.append(
                "prompts.userPrompt is ignored for json output (as llm-data-gen does); kept in metadata"
            )
        return _user_prompt_json(schema, keys)
    up = prompts.get("userPrompt")
    if isinstance(up, str) and up.strip():
        return convert_placeholders(up)
    notes.append("no prompts.userPrompt: the user prompt lists the task fields (llm-data-gen's default)")
    return "Generate content based on the following context:\n" + _context_block(keys)


def _model(api: dict[str, Any]) -> dict[str, Any]:
    """``api`` → the template's model (llm-data-gen defaults: ``openrouter/auto``, 0.6, 4000)."""
    model_id = api.get("model") if isinstance(api.get("model"), str) and api.get("model") else DEFAULT_MODEL
    max_tokens = (
        api.get("maxTokens") if isinstance(api.get("maxTokens"), int) and api["maxTokens"] >= 1 else 4000
    )
    return {
        "provider": "ollama" if api.get("provider") == "ollama" else "openrouter",
        "id": model_id,
        "temperature": min(max(_num(api.get("temperature"), 0.6), 0.0), 2.0),
        "max_tokens": max_tokens,
    }


def _metadata(
    meta: dict[str, Any],
    api: dict[str, Any],
    output: dict[str, Any],
    prompts: dict[str, Any],
    fmt: str,
    schema: Any,
    notes: list[str],
) -> dict[str, Any]:
    """What has no place in a template, kept under ``metadata.llm_data_gen``, without any secret-looking field
    (each dropped path gets a note)."""
    hints: list[tuple[str, dict[str, Any]]] = []
    _collect_hints(schema, "", hints)
    removed: list[str] = []
    origin: dict[str, Any] = {
        "meta": scrub_secrets(meta, "meta", removed),
        "api": scrub_secrets(
            {k: v for k, v in api.items() if k not in ("model", "temperature", "maxTokens")}, "api", removed
        ),
        "output": scrub_secrets({k: v for k, v in output.items() if k != "format"}, "output", removed),
        "x_llm_generate": dict(hints),
    }
    notes.extend(
        f"{path} was dropped: it looks like a secret (keys are configured on the server, never stored in a "
        "template)"
        for path in removed
    )
    if isinstance(prompts.get("userPrompt"), str) and fmt == "json":
        origin["user_prompt"] = prompts["userPrompt"]
    return {"imported_from": "llm-data-gen", "llm_data_gen": origin}


def map_config(config: Any, *, name: str | None = None, visibility: str = "private") -> ImportResult:
    """Map an llm-data-gen config (parsed JSON) onto a template document. Raises ``LlmDataGenError``."""
    if not isinstance(config, dict):
        raise LlmDataGenError("an llm-data-gen config is a JSON object")
    notes: list[str] = []
    meta, api, output, prompts, generation = (
        _section(config, k) for k in ("meta", "api", "output", "prompts", "generation")
    )
    fmt, schema = _format_and_schema(config, output)
    tasks = _tasks(generation, notes)
    user = _user_prompt(fmt, schema, prompts, _task_keys(tasks), notes)
    model = _model(api)
    meta_name = meta.get("name") if isinstance(meta.get("name"), str) else None
    doc_name = (name or meta_name or "llm-data-gen import").strip()[:200] or "llm-data-gen import"
    raw_description = meta.get("description")
    description = raw_description if isinstance(raw_description, str) else ""
    document = TemplateDocument.model_validate(
        {
            "name": doc_name,
            "description": description[:5000],
            "category": "llm-data-gen",
            "tags": ["llm-data-gen"],
            "visibility": visibility,
            "output": {"format": fmt},
            "prompts": {"system": _system_prompt(prompts), "user": user},
            "schema": strip_hints(schema) if isinstance(schema, dict) else None,
            "validation": {"mode": "strict" if fmt == "json" else "none", "rules": []},
            "variables": {},
            "tasks": tasks,
            "model": model,
            "metadata": _metadata(meta, api, output, prompts, fmt, schema, notes),
        }
    )
    return ImportResult(document=document, notes=notes)
