"""Slot evaluation: one answer of the model (or a failed call) → parse → validate → dedup → a verdict.

Pure: it reads the job's dedup state (content hashes, ``unique`` rule values of the accepted items) and never
changes it; the caller commits an accepted value. Synchronous, so the runner evaluates and reserves the next
index between two awaits and concurrent slots of a job never race.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any, Literal

from llmts_common.contracts import GenerationRequested
from llmts_common.contracts.common_models import StageSpec
from llmts_templating.parse import OutputFormat, parse_output
from llmts_templating.validation import (
    CompiledRules,
    UniqueState,
    ValidationMode,
    compile_rules,
    compile_schema,
    content_hash,
    validate_item,
)

AttemptOutcome = Literal["valid", "invalid", "duplicate", "provider_error", "near_duplicate", "judge"]
Action = Literal["accept", "repair", "reject"]
RejectReason = Literal["invalid", "duplicate", "provider_error", "stage", "near_duplicate", "judge"]


@dataclass(frozen=True)
class ItemRules:
    """How a job judges an answer: output format, validation mode, compiled schema and rules, dedup, and how many
    item attempts (first + repairs) a target gets."""

    output_format: OutputFormat
    mode: ValidationMode
    schema: Any
    rules: CompiledRules
    dedup: bool
    max_attempts: int
    stages: tuple[StageRules, ...] = ()  # the later stages of a multi-stage template (issue 18), in order

    @classmethod
    def of(cls, req: GenerationRequested) -> ItemRules:
        """Compile the template's rules and schema (raises for an invalid template)."""
        tpl = req.template
        fmt = tpl.output_format
        rules = compile_rules(tpl.validation.rules, output_format=fmt)
        schema: Any = None
        if fmt == "json" and tpl.json_schema is not None:
            schema = compile_schema(tpl.json_schema)
        elif fmt == "json" and req.validation_mode == "strict":
            raise ValueError("strict validation of JSON output needs a schema")
        stages = tuple(StageRules.of(stage, req.max_attempts_per_item) for stage in tpl.stages)
        if stages and fmt != "json":
            raise ValueError("stages need output format json")
        return cls(fmt, req.validation_mode, schema, rules, req.dedup, req.max_attempts_per_item, stages)


@dataclass(frozen=True)
class StageRules:
    """A later stage of a multi-stage template: its prompts, the schema its provider requests ask for and the rules
    its answers are judged by (its own validation mode, schema and rules; no dedup: that is the item's, on
    ``main``). Each stage of an item gets ``max_attempts`` item attempts of its own (first + repairs)."""

    name: str
    system: str
    user: str
    json_schema: dict[str, Any]
    rules: ItemRules

    @classmethod
    def of(cls, stage: StageSpec, max_attempts: int) -> StageRules:
        mode = stage.validation.mode
        rules = ItemRules(
            "json",
            mode,
            compile_schema(stage.json_schema),
            compile_rules(stage.validation.rules, output_format="json"),
            dedup=False,
            max_attempts=max_attempts,
        )
        return cls(stage.name, stage.prompts.system, stage.prompts.user, stage.json_schema, rules)


@dataclass(frozen=True)
class Verdict:
    outcome: AttemptOutcome
    action: Action
    errors: list[dict[str, Any]] = field(default_factory=list)
    value: Any = None  # the parsed item when valid
    digest: str = ""  # its content hash when valid
    stage: str | None = None  # the later stage whose answers ended the item (multi-stage templates)

    @property
    def reason(self) -> RejectReason:
        """Why the item is rejected (meaningful for ``action == "reject"``)."""
        if self.stage is not None:
            return "stage"
        if self.outcome == "duplicate":
            return "duplicate"
        if self.outcome == "provider_error":
            return "provider_error"
        if self.outcome in ("near_duplicate", "judge"):  # near-duplicate control, the LLM judge (issue 18)
            return "near_duplicate" if self.outcome == "near_duplicate" else "judge"
        return "invalid"


def _error(rule: str, message: str) -> list[dict[str, Any]]:
    return [{"path": "$", "rule": rule, "message": message}]


def judge_answer(
    text: str, rules: ItemRules, *, hashes: Container[str], unique: UniqueState
) -> tuple[AttemptOutcome, list[dict[str, Any]], Any, str]:
    """Parse, validate and deduplicate one answer: (outcome, errors, value, content hash)."""
    parsed = parse_output(text, rules.output_format)
    if not parsed.ok:
        return "invalid", _error("parse", parsed.error or "could not parse"), None, ""
    value = parsed.value
    report = validate_item(
        value,
        mode=rules.mode,
        schema=rules.schema,
        rules=rules.rules,
        unique_state=unique,
        output_format=rules.output_format,
    )
    if not report.valid:
        return "invalid", [e.model_dump() for e in report.errors], value, ""
    digest = content_hash(value)
    if rules.dedup and digest in hashes:
        return "duplicate", _error("duplicate", "identical to an earlier item"), value, digest
    return "valid", [], value, digest


def evaluate(
    answer: str | None,
    rules: ItemRules,
    *,
    item_attempt: int,
    hashes: Container[str],
    unique: UniqueState,
    provider_error: str | None = None,
) -> Verdict:
    """The verdict on item attempt ``item_attempt`` of a target: accept a valid answer; otherwise repair while the
    target has item attempts left, else reject. ``provider_error``: the call failed for good (retries exhausted),
    ``answer`` is then ignored."""
    if provider_error is not None or answer is None:
        outcome: AttemptOutcome = "provider_error"
        errors = _error("provider", (provider_error or "no answer")[:300])
        value: Any = None
        digest = ""
    else:
        outcome, errors, value, digest = judge_answer(answer, rules, hashes=hashes, unique=unique)
    if outcome == "valid":
        return Verdict(outcome, "accept", errors, value, digest)
    action: Action = "reject" if item_attempt >= rules.max_attempts else "repair"
    return Verdict(outcome, action, errors)
