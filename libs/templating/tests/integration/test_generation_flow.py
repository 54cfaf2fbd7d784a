"""The path a generator takes for each item: context -> prompts -> (model answer) -> parse -> validate -> commit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmts_templating.render import PromptRenderer, build_context, check_template, undeclared_variables
from llmts_templating.validation import (
    UniqueState,
    check_schema,
    compile_rules,
    compile_schema,
    rule_paths_missing_from_schema,
    validate_output,
)

pytestmark = pytest.mark.unit

TEMPLATE = {
    "prompts": {
        "system": "You write {{ difficulty }} quiz questions in {{ language }}. Reply with JSON only.",
        "user": (
            "Question #{index} about {topic} ({{ topic | translit }}).\n"
            "{% for o in ['A', 'B', 'C', 'D'] %}Option {{ o }}\n{% endfor %}"
            'Format: {"question": "...", "options": [{"text": "..."}], "answer": "A"}'
        ),
    },
    "schema": {
        "type": "object",
        "required": ["question", "options", "answer"],
        "properties": {
            "question": {"type": "string"},
            "options": {
                "type": "array",
                "items": {"type": "object", "properties": {"text": {"type": "string"}}},
            },
            "answer": {"type": "string", "enum": ["A", "B", "C", "D"]},
        },
    },
    "rules": [
        {"path": "question", "min_length": 10, "unique": True},
        {"path": "options", "min_items": 4, "max_items": 4},
        {"path": "options[].text", "max_length": 80},
    ],
    "variables": {"language": "English", "difficulty": "easy"},
    "tasks": [{"count": 2, "topic": "история"}, {"count": 1, "topic": "физика", "difficulty": "hard"}],
}

ANSWERS = [
    'Sure!\n```json\n{"question": "When did the Western Roman Empire fall?", "options": [{"text": "476"}, {"text": "1453"}, {"text": "800"}, {"text": "1066"}], "answer": "A"}\n```',
    '{"question": "When did the Western Roman Empire fall?", "options": [{"text": "476"}, {"text": "1"}, {"text": "2"}, {"text": "3"}], "answer": "A"}',
    'Here: {"question": "What is the unit of force?", "options": [{"text": "newton"}, {"text": "joule"}, {"text": "watt"}], "answer": "E"} done',
]


def test_validate_endpoint_view() -> None:
    for name, source in TEMPLATE["prompts"].items():
        assert check_template(source, path=f"prompts.{name}") == []
    needed = undeclared_variables(TEMPLATE["prompts"]["user"]) | undeclared_variables(
        TEMPLATE["prompts"]["system"]
    )
    assert needed == {"difficulty", "language", "topic"}
    assert check_schema(TEMPLATE["schema"]) == []
    assert rule_paths_missing_from_schema(TEMPLATE["rules"], TEMPLATE["schema"]) == []


def test_job_flow() -> None:
    renderer = PromptRenderer()
    schema = compile_schema(TEMPLATE["schema"])
    rules = compile_rules(TEMPLATE["rules"])
    unique = UniqueState()
    now = datetime(2026, 3, 22, tzinfo=UTC)
    index = 0
    outcomes = []
    for task in TEMPLATE["tasks"]:
        for task_index in range(task["count"]):
            ctx = build_context(
                index=index, task_index=task_index, job_id="job-7", now=now,
                template_variables=TEMPLATE["variables"], task=task,
            )  # fmt: skip
            prompts = renderer.render_prompts(TEMPLATE["prompts"]["system"], TEMPLATE["prompts"]["user"], ctx)
            assert f"Question #{index} about {task['topic']}" in prompts.user
            assert '{"question": "..."' in prompts.user
            parsed, report = validate_output(
                ANSWERS[index],
                output_format="json",
                mode="strict",
                schema=schema,
                rules=rules,
                unique_state=unique,
            )
            if report.valid:
                unique.commit(parsed.value, rules)
            outcomes.append((report.valid, [(e.path, e.rule) for e in report.errors]))
            index += 1
    assert outcomes == [
        (True, []),
        (False, [("$.question", "unique")]),
        (False, [("$.answer", "enum"), ("$.options", "min_items")]),
    ]
    assert "hard" in renderer.render(TEMPLATE["prompts"]["system"], ctx)
    assert renderer.cache_info().misses == 2
