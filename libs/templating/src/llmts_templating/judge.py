"""LLM judge (issue 18 #4): what a judge is asked, how its verdict is read, and whether the item passes.

A judge is a second model that scores each accepted item against a rubric: ``scores`` names each score with its
range (``{"helpfulness": [1, 5], "accuracy": [1, 5]}``) and ``accept`` is an expression over them
(``"helpfulness >= 4 and accuracy >= 4"``). The judge answers a JSON object ``{"scores": {name: number}, "reason":
"…"}`` (asked for with a strict JSON Schema, so structured-output models cannot drift); a score out of its range, a
missing one or unreadable JSON is a judge failure (retried like a failed call, never silently accepted). The
``accept`` expression is a single Jinja expression evaluated in the templating sandbox (its limits and deadline)
with the scores as the only names; it is checked when the spec is built (syntax, unknown names) so a job never
starts with a judge that cannot decide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["JudgeError", "JudgeRules", "Verdict"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TEMPLATE_MARKERS = ("{{", "}}", "{%", "%}", "{#", "#}")
SYSTEM = (
    "You are a strict, consistent judge of generated data. Score the item below against the rubric. "
    'Answer with one JSON object: {{"scores": {{{names}}}, "reason": "one or two sentences"}}. '
    "Each score is a number within its range: {ranges}.\n\nRubric:\n{rubric}"
)


class JudgeError(ValueError):
    """A judge spec that cannot be used (``path`` names the field), or a verdict that cannot be read."""

    def __init__(self, message: str, path: str = "judge") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Verdict:
    scores: dict[str, float]
    reason: str
    accepted: bool


Renderer = Callable[[str, Mapping[str, Any]], str]
NamesOf = Callable[[str], set[str]]


def _default_renderer() -> Renderer:
    """The process's shared sandbox renderer (its compile cache too), as samplers use it — not a new environment
    per judge."""
    from llmts_templating.render import _default_renderer as shared

    return shared().render


def _default_names() -> NamesOf:
    from llmts_templating.render import undeclared_variables

    return undeclared_variables


@dataclass(frozen=True)
class JudgeRules:
    """A checked judge: rubric, score ranges and the accept expression."""

    rubric: str
    scores: dict[str, tuple[float, float]]
    accept: str
    render: Renderer

    @classmethod
    def build(
        cls,
        rubric: str,
        scores: Mapping[str, Sequence[float]],
        accept: str,
        *,
        render: Renderer | None = None,
        names_of: NamesOf | None = None,
    ) -> JudgeRules:
        if not rubric.strip():
            raise JudgeError("the rubric is empty", "judge.rubric")
        if not scores:
            raise JudgeError("name at least one score with its range", "judge.scores")
        ranges: dict[str, tuple[float, float]] = {}
        for name, bounds in scores.items():
            if not _NAME.match(name):
                raise JudgeError(f"score name {name!r} must be an identifier", f"judge.scores.{name}")
            if len(bounds) != 2 or bounds[0] >= bounds[1]:
                raise JudgeError(f"score {name!r} needs [min, max] with min < max", f"judge.scores.{name}")
            ranges[name] = (float(bounds[0]), float(bounds[1]))
        expression = accept.strip()
        if not expression or any(m in expression for m in _TEMPLATE_MARKERS):
            raise JudgeError(
                "accept must be one expression over the scores, e.g. 'quality >= 4'", "judge.accept"
            )
        try:
            used = (names_of or _default_names())("{{ " + expression + " }}")
        except Exception as exc:  # a syntax error, or a construct the sandbox refuses
            raise JudgeError(f"accept cannot be read: {exc}", "judge.accept") from None
        unknown = sorted(used - set(ranges))
        if unknown:
            raise JudgeError(f"accept names unknown scores: {', '.join(unknown)}", "judge.accept")
        rules = cls(rubric.strip(), ranges, expression, render or _default_renderer())
        rules.decide({n: lo for n, (lo, _hi) in ranges.items()})  # evaluates, or says why not, before any job
        return rules

    def schema(self) -> dict[str, Any]:
        """The JSON Schema the judge's answer must follow."""
        props = {n: {"type": "number", "minimum": lo, "maximum": hi} for n, (lo, hi) in self.scores.items()}
        return {
            "type": "object",
            "properties": {
                "scores": {
                    "type": "object",
                    "properties": props,
                    "required": list(self.scores),
                    "additionalProperties": False,
                },
                "reason": {"type": "string"},
            },
            "required": ["scores", "reason"],
            "additionalProperties": False,
        }

    def messages(self, item: Any, variables: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
        """System (rubric, scale) and user (the item, and what it was asked from) messages."""
        system = SYSTEM.format(
            names=", ".join(f'"{n}": <number>' for n in self.scores),
            ranges=", ".join(f"{n} from {lo:g} to {hi:g}" for n, (lo, hi) in self.scores.items()),
            rubric=self.rubric,
        )
        parts = []
        if variables:
            parts.append(
                "The item was generated for these inputs:\n"
                + json.dumps(variables, ensure_ascii=False, default=str)
            )
        parts.append("Item to judge:\n" + json.dumps(item, ensure_ascii=False, indent=1, default=str))
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]

    def read(self, text: str) -> Verdict:
        """The judge's answer → a verdict (scores in range, accept decided); :class:`JudgeError` otherwise."""
        try:
            answer = json.loads(text.strip().removeprefix("```json").removeprefix("```").removesuffix("```"))
        except ValueError:
            raise JudgeError("the judge's answer is not JSON", "verdict") from None
        raw = answer.get("scores") if isinstance(answer, dict) else None
        if not isinstance(raw, dict):
            raise JudgeError("the judge's answer has no scores object", "verdict.scores")
        scores: dict[str, float] = {}
        for name, (lo, hi) in self.scores.items():
            value = raw.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise JudgeError(f"score {name!r} is missing or not a number", f"verdict.scores.{name}")
            if not lo <= value <= hi:
                raise JudgeError(
                    f"score {name!r} = {value} is outside [{lo:g}, {hi:g}]", f"verdict.scores.{name}"
                )
            scores[name] = float(value)
        reason = answer.get("reason")
        return Verdict(scores, reason if isinstance(reason, str) else "", self.decide(scores))

    def decide(self, scores: Mapping[str, float]) -> bool:
        try:
            out = self.render("{{ 1 if (" + self.accept + ") else 0 }}", dict(scores))
        except Exception as exc:
            raise JudgeError(f"accept cannot be evaluated: {exc}", "judge.accept") from None
        return out.strip() == "1"
