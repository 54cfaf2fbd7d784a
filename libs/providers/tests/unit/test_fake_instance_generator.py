"""The fake providers' JSON Schema instance generator: output validates, varies, and faults really are faults."""

from __future__ import annotations

import itertools
import json
import random
import re
from typing import Any

import jsonschema
import pytest
from tests.fakes.common import schema_from_messages
from tests.fakes.instance import broken_variant, generate_from_pattern, generate_instance

pytestmark = pytest.mark.unit

QUIZ: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 10, "maxLength": 200},
        "options": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 4,
            "maxItems": 4,
            "uniqueItems": True,
        },
        "answer": {"type": "string", "pattern": "^[A-D]$"},
        "difficulty": {"enum": ["easy", "medium", "hard"]},
        "points": {"type": "integer", "minimum": 1, "maximum": 5},
        "kind": {"const": "mcq"},
    },
    "required": ["question", "options", "answer", "difficulty", "points", "kind"],
    "additionalProperties": False,
}

PERSON: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "type": "object",
            "properties": {
                "street": {"type": "string", "maxLength": 40},
                "zip": {"type": "string", "pattern": "^\\d{5}(-\\d{4})?$"},
                "country": {"type": "string", "minLength": 2, "maxLength": 2, "pattern": "^[A-Z]{2}$"},
            },
            "required": ["street", "zip", "country"],
            "additionalProperties": False,
        }
    },
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "email": {"type": "string", "format": "email"},
        "homepage": {"type": "string", "format": "uri"},
        "born": {"type": "string", "format": "date"},
        "updated_at": {"type": "string", "format": "date-time"},
        "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "weight": {"type": "number", "multipleOf": 0.5, "minimum": 40, "maximum": 120},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 5},
        "nickname": {"type": ["string", "null"]},
        "active": {"type": "boolean"},
        "address": {"$ref": "#/$defs/address"},
        "previous": {"type": "array", "items": {"$ref": "#/$defs/address"}, "minItems": 1, "maxItems": 2},
        "contact": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"phone": {"type": "string", "pattern": "^\\+\\d{11}$"}},
                    "required": ["phone"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {"fax": {"type": "integer"}},
                    "required": ["fax"],
                    "additionalProperties": False,
                },
            ]
        },
        "code": {"allOf": [{"type": "string"}, {"pattern": "^(red|green|blue)-[a-z]{3}$"}]},
    },
    "required": [
        "id",
        "email",
        "homepage",
        "born",
        "updated_at",
        "score",
        "weight",
        "tags",
        "address",
        "previous",
        "contact",
        "code",
    ],
    "additionalProperties": False,
}

NESTED_ARRAYS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "matrix": {
            "type": "array",
            "minItems": 2,
            "maxItems": 3,
            "items": {
                "type": "array",
                "items": {"type": "integer", "minimum": -3, "maximum": 3},
                "minItems": 3,
                "maxItems": 3,
            },
        },
        "pair": {
            "type": "array",
            "prefixItems": [{"type": "string"}, {"type": "integer"}],
            "minItems": 2,
            "maxItems": 2,
        },
        "meta": {"type": "object", "minProperties": 2, "additionalProperties": {"type": "integer"}},
        "ratio": {"type": "number", "minimum": 0.25, "exclusiveMaximum": 0.5},
    },
    "required": ["matrix", "pair", "meta", "ratio"],
}

SCHEMAS = [QUIZ, PERSON, NESTED_ARRAYS, {"type": "array", "items": QUIZ, "minItems": 2, "maxItems": 5}]


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.parametrize("schema", SCHEMAS, ids=["quiz", "person", "nested", "array-root"])
def test_instances_validate(schema: dict[str, Any]) -> None:
    validator = _validator(schema)
    for counter in range(40):
        instance = generate_instance(schema, seed=3, counter=counter)
        errors = [e.message for e in validator.iter_errors(instance)]
        assert not errors, (counter, instance, errors)


def test_instances_vary_but_are_deterministic() -> None:
    a = [json.dumps(generate_instance(QUIZ, seed=1, counter=i), sort_keys=True) for i in range(20)]
    b = [json.dumps(generate_instance(QUIZ, seed=1, counter=i), sort_keys=True) for i in range(20)]
    assert a == b
    assert len(set(a)) == 20
    assert all(x != y for x, y in itertools.pairwise(a))


@pytest.mark.parametrize(
    "pattern",
    ["^[A-D]$", "^(yes|no|maybe)$", "^[a-z]+_[0-9]{2,4}$", "^\\w{3}\\.\\d$", "^(?:ab|cd)?x[^0-9]$", "abc"],
)
def test_pattern_generator(pattern: str) -> None:
    rng = random.Random(0)
    for _ in range(20):
        s = generate_from_pattern(pattern, rng)
        assert s is not None
        assert re.search(pattern, s)


def test_unsupported_pattern_returns_none() -> None:
    assert generate_from_pattern("^(?=lookahead)x$", random.Random(0)) is None


def test_broken_variant_is_invalid() -> None:
    validator = _validator(QUIZ)
    rng = random.Random(5)
    for counter in range(30):
        text = broken_variant(generate_instance(QUIZ, counter=counter), QUIZ, rng)
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        assert not validator.is_valid(parsed)


def test_schema_found_in_prompt() -> None:
    from llmts_providers.models import schema_instruction

    messages = [
        {"role": "system", "content": "Write items." + schema_instruction(QUIZ)},
        {"role": "user", "content": "go"},
    ]
    assert schema_from_messages(messages) == QUIZ
    assert schema_from_messages([{"role": "user", "content": "no schema {here}"}]) is None
