"""Samplers: validation, dependency order, reproducibility, stratified categories, every kind."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from llmts_templating.samplers import BLOCK, SamplerError, SamplerPlan

TONES: dict[str, Any] = {
    "sampler": "category",
    "values": ["formal", "friendly", "terse"],
    "weights": [2, 1, 1],
}


def test_plain_variables_are_not_samplers() -> None:
    plan = SamplerPlan.from_variables({"topic": "rivers", "meta": {"a": 1}, "tone": TONES})
    assert list(plan.specs) == ["tone"]


def test_same_seed_same_values_other_seed_other_values() -> None:
    plan = SamplerPlan.from_variables(
        {
            "tone": TONES,
            "n": {"sampler": "uniform", "type": "int", "low": 1, "high": 1000},
            "id": {"sampler": "uuid"},
        }
    )
    first = [plan.draw(7, i) for i in range(50)]
    again = SamplerPlan.from_variables({name: spec.model_dump() for name, spec in plan.specs.items()})
    assert first == [again.draw(7, i) for i in reversed(range(50))][::-1]  # any order of draws, same values
    other = [plan.draw(8, i) for i in range(50)]
    assert first != other
    assert len({v["id"] for v in first}) == 50


@pytest.mark.parametrize("n", [100, 1000, 1234])
def test_categories_follow_their_shares_within_a_point(n: int) -> None:
    plan = SamplerPlan.from_variables({"tone": TONES})
    for seed in (1, 2, 3):
        counts = Counter(plan.draw(seed, i)["tone"] for i in range(n))
        targets = {"formal": 0.5, "friendly": 0.25, "terse": 0.25}
        worst = max(abs(counts[k] / n - share) for k, share in targets.items())
        assert worst * 100 <= 1.0, (n, seed, counts)


def test_category_order_is_shuffled_not_periodic() -> None:
    plan = SamplerPlan.from_variables({"tone": {"sampler": "category", "values": ["a", "b"]}})
    seq = [plan.draw(5, i)["tone"] for i in range(BLOCK)]
    assert seq != ["a", "b"] * (BLOCK // 2)
    assert seq.count("a") == BLOCK // 2


def test_subcategory_is_conditioned_on_its_category() -> None:
    plan = SamplerPlan.from_variables(
        {
            "tone": TONES,
            "channel": {
                "sampler": "subcategory",
                "category": "tone",
                "values": {"formal": ["email", "letter"], "friendly": ["chat"], "terse": ["sms"]},
            },
        }
    )
    assert plan.order.index("tone") < plan.order.index("channel")
    allowed = {"formal": {"email", "letter"}, "friendly": {"chat"}, "terse": {"sms"}}
    for i in range(200):
        v = plan.draw(3, i)
        assert v["channel"] in allowed[v["tone"]]


def test_numbers_dates_and_uuids_stay_in_their_ranges() -> None:
    plan = SamplerPlan.from_variables(
        {
            "u": {"sampler": "uniform", "low": 1.5, "high": 2.5, "decimals": 2},
            "k": {"sampler": "normal", "mean": 10, "std": 50, "type": "int", "min": 0, "max": 20},
            "d": {"sampler": "datetime", "start": "2024-01-01", "end": "2024-01-31", "format": "%d.%m.%Y"},
            "i": {"sampler": "uuid"},
        }
    )
    for i in range(300):
        v = plan.draw(11, i)
        assert 1.5 <= v["u"] <= 2.5
        assert round(v["u"], 2) == v["u"]
        assert isinstance(v["k"], int)
        assert 0 <= v["k"] <= 20
        day = datetime.strptime(v["d"], "%d.%m.%Y")
        assert datetime(2024, 1, 1) <= day <= datetime(2024, 1, 31)
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", v["i"])


def test_person_in_russian_is_cyrillic_and_reproducible() -> None:
    plan = SamplerPlan.from_variables(
        {"who": {"sampler": "person", "locale": "ru_RU", "fields": ["name", "email"]}}
    )
    a, b = plan.draw(1, 0)["who"], plan.draw(1, 0)["who"]
    assert a == b
    assert set(a) == {"name", "email"}
    assert re.search(r"[А-Яа-яЁё]", a["name"])
    assert plan.draw(1, 1)["who"] != a


def test_expression_renders_over_other_columns_in_the_sandbox() -> None:
    plan = SamplerPlan.from_variables(
        {
            "title": {"sampler": "expression", "template": "{{ tone | upper }}-{{ n }}"},
            "tone": TONES,
            "n": {"sampler": "uniform", "type": "int", "low": 1, "high": 9},
            "double": {"sampler": "expression", "template": "{{ n * 2 }}", "type": "int"},
        }
    )
    assert plan.order.index("title") > plan.order.index("tone")
    v = plan.draw(4, 0, {"topic": "x"})
    assert v["title"] == f"{v['tone'].upper()}-{v['n']}"
    assert v["double"] == 2 * v["n"]


def test_expression_cannot_escape_the_sandbox() -> None:
    with pytest.raises(SamplerError, match="not allowed") as refused:
        SamplerPlan.from_variables({"x": {"sampler": "expression", "template": "{{ ''.__class__.__mro__ }}"}})
    assert refused.value.path == "variables.x.template"
    plan = SamplerPlan.from_variables({"y": {"sampler": "expression", "template": "{{ missing + 1 }}"}})
    with pytest.raises(SamplerError) as undefined:
        plan.draw(1, 0)
    assert undefined.value.path == "variables.y.template"


def test_cycles_and_bad_specs_are_refused_with_a_path() -> None:
    with pytest.raises(SamplerError) as cycle:
        SamplerPlan.from_variables(
            {
                "a": {"sampler": "expression", "template": "{{ b }}"},
                "b": {"sampler": "expression", "template": "{{ a }}"},
            }
        )
    assert "cycle" in cycle.value.message
    with pytest.raises(SamplerError) as bad:
        SamplerPlan.from_variables({"tone": {"sampler": "category", "values": ["a"], "weights": [1, 2]}})
    assert bad.value.path.startswith("variables.tone")
    with pytest.raises(SamplerError) as unknown:
        SamplerPlan.from_variables({"x": {"sampler": "zipf"}})
    assert unknown.value.path.startswith("variables.x")
    with pytest.raises(SamplerError) as orphan:
        SamplerPlan.from_variables({"c": {"sampler": "subcategory", "category": "nope", "values": {}}})
    assert orphan.value.path == "variables.c.category"


def test_targets_give_the_shares() -> None:
    plan = SamplerPlan.from_variables({"tone": TONES})
    assert plan.targets() == {"tone": {"formal": 0.5, "friendly": 0.25, "terse": 0.25}}
