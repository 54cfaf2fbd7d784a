"""The fakes' dataset-quality behaviour (issue 18, ``make bench-quality``): LLM-judge answers, and a deterministic
share of near-duplicate item answers.

- **Judge requests** (structured output whose schema is a judge's: ``{scores: {name: number…}, reason}``, as
  ``llmts_templating.judge.JudgeRules.schema`` asks) are answered with every score at its maximum — or at its
  minimum for a share ``rate_low_score`` of the judged items. Which item scores low is decided by a hash of the
  item text in the request, so the same item always gets the same verdict (a regenerated item is another text).
- **Item requests** with ``rate_near_duplicate > 0`` (or ``long_texts``): every top-level string property of the
  answer is a 30-word text drawn from a generator seeded by a hash of the request (messages + seed: deterministic
  for a given request, different for a repair or a regeneration), and a share ``rate_near_duplicate`` of the
  requests (again by that hash) answer a near-duplicate instead: an earlier answer of this fake with the last word
  of each text changed (word-3-shingle Jaccard ≈ 0.9 to it).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import deque
from typing import Any

from tests.fakes.instance import WORDS, generate_instance

TEXT_WORDS = 30
EARLIER = 64  # recent distinct answers kept per fake (the near-duplicates' originals)


def _unit(*parts: Any) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_judge_schema(schema: Any) -> bool:
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict) or set(props) != {"scores", "reason"}:
        return False
    scores = props["scores"].get("properties") if isinstance(props["scores"], dict) else None
    return isinstance(scores, dict) and bool(scores)


def judge_answer(schema: dict[str, Any], messages: list[Any], rate_low_score: float) -> str:
    """Every score at its maximum, or at its minimum for a share ``rate_low_score`` of the judged items."""
    item = str(messages[-1].get("content") if isinstance(messages[-1], dict) else messages[-1])
    low = _unit("low", item) < rate_low_score
    scores = {}
    for name, spec in schema["properties"]["scores"]["properties"].items():
        scores[name] = spec.get("minimum", 1) if low else spec.get("maximum", 5)
    reason = "weak: it misses the rubric" if low else "meets the rubric"
    return json.dumps({"scores": scores, "reason": reason})


def _text(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(TEXT_WORDS)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def item_answer(
    earlier: deque[dict[str, Any]],
    schema: dict[str, Any] | None,
    body: dict[str, Any],
    seed: int,
    rate_near_duplicate: float,
) -> str:
    """An item with long texts, or a near-duplicate of an earlier one for a share of the requests."""
    key = [body.get("messages"), body.get("seed"), body.get("model")]
    if earlier and _unit("near", key) < rate_near_duplicate:
        original = earlier[int(_unit("which", key) * len(earlier))]
        twin = {
            k: (
                v.rsplit(" ", 1)[0] + f" {WORDS[int(_unit('word', key) * len(WORDS))]}x."
                if isinstance(v, str)
                else v
            )
            for k, v in original.items()
        }
        return json.dumps(twin, ensure_ascii=False)
    rng = random.Random(int(_unit("text", key) * 2**63))
    instance = generate_instance(schema, seed=seed, counter=rng.randint(0, 2**31)) if schema else {}
    if not isinstance(instance, dict):
        instance = {"result": instance}
    props = (schema or {}).get("properties") or {"result": {"type": "string"}}
    for name, spec in props.items():
        if isinstance(spec, dict) and spec.get("type") == "string" and not spec.get("enum"):
            instance[name] = _text(rng)
    earlier.append(instance)
    return json.dumps(instance, ensure_ascii=False)


def quality_answer(state: Any, schema: dict[str, Any] | None, body: dict[str, Any]) -> str | None:
    """The content of a judge or long-text answer, or None (the fake's ordinary answer). ``state``: the fake's
    ``FakeState`` (its config; it keeps the recent answers, cleared with the state)."""
    config = state.config
    messages = body.get("messages") or []
    if schema is not None and is_judge_schema(schema) and messages:
        return judge_answer(schema, messages, float(config.rate_low_score))
    if config.rate_near_duplicate > 0 or config.long_texts:
        earlier: deque[dict[str, Any]] | None = getattr(state, "quality_earlier", None)
        if earlier is None:
            earlier = state.quality_earlier = deque(maxlen=EARLIER)
            state.reset_hooks.append(earlier.clear)
        return item_answer(earlier, schema, body, int(config.seed), float(config.rate_near_duplicate))
    return None
