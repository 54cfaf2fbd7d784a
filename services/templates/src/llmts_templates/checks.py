"""``POST /templates/validate``: every problem of a template document, as data.

Errors make the document unusable; warnings are worth a look but a generation can still run:

- the document shape (pydantic; unknown keys, schema missing for json …) → errors at their path;
- Jinja syntax / refused constructs / oversized prompts → errors with line numbers;
- undefined variables → **warnings**: a name declared in neither ``variables``, nor a task, nor the built-ins may
  still arrive as a request variable at preview/generation time; rendering is strict, so a name that is still
  missing then fails with an error naming it (preview shows it at once);
- llm-data-gen placeholders ``{name}`` that nothing declares → warnings (they would stay literal text);
- invalid JSON Schema (checked against its metaschema) → errors; malformed rules → errors;
- rules naming paths the schema lacks → warnings;
- samplers among ``variables``, the seed dataset, the judge and the stages (``pipeline_checks``) → errors at their
  paths; a seed's columns and the sampler names count as declared variables, and a stage's prompts may also use
  ``main`` and the earlier stages' names (a later stage's name is an error).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError

from llmts_templates.domain.document import TemplateDocument
from llmts_templates.domain.issues import Issue
from llmts_templates.pipeline_checks import (
    PromptScope,
    judge_issues,
    prompt_scopes,
    sampler_issues,
    stage_issues,
    stage_reference_issues,
)
from llmts_templating.pool import Inspection
from llmts_templating.render import (
    BUILTIN_VARIABLES,
    RenderError,
    TemplateIssue,
    check_template,
    placeholder_names,
    undeclared_variables,
)
from llmts_templating.validation import (
    RuleError,
    check_schema,
    compile_rules,
    rule_paths_missing_from_schema,
)

_SUFFIX = re.compile(r"^(?P<base>.+?)_(?:(?:minus|plus)(?:_\d{1,6})?|translit|num)$")


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def issue_detail(issue: Issue) -> dict[str, Any]:
    """One ``validation_error`` detail in the shared shape ``{loc, msg, type}`` (``loc`` from the body), with the
    issue's ``path`` and, for prompts, its ``line`` and ``column``."""
    loc: list[str | int] = ["body"]
    for name, index in _PATH_PART.findall(issue.path.lstrip("$")):
        loc.append(int(index) if index else name)
    detail: dict[str, Any] = {
        "loc": loc,
        "msg": issue.message,
        "type": issue.kind or "value_error",
        "path": issue.path,
    }
    if issue.line is not None:
        detail["line"] = issue.line
        detail["column"] = issue.column
    return detail


class ValidationReport(BaseModel):
    valid: bool
    errors: list[Issue] = Field(default_factory=list)
    warnings: list[Issue] = Field(default_factory=list)


def loc_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "$"


def shape_errors(exc: ValidationError) -> list[Issue]:
    issues = []
    for err in exc.errors(include_url=False):
        path = loc_path(tuple(err["loc"]))
        if path == "$" and "schema is required" in err["msg"]:
            path = "schema"
        issues.append(Issue(path=path, message=err["msg"], kind="document"))
    return issues


def _declared(doc: TemplateDocument, extra: set[str] | None = None) -> set[str]:
    return doc.declared_names() | set(BUILTIN_VARIABLES) | (extra or set())


class Inspector(Protocol):
    """Compiles a template off the event loop under a hard deadline (``llmts_templating.pool.RenderPool``)."""

    async def inspect(self, source: str, *, path: str | None = None) -> Inspection: ...


def _inspect_here(source: str, path: str) -> Inspection:
    """In-process inspection (tests, tools); the service inspects through its render pool instead."""
    problems = check_template(source, path=path)
    if problems:
        return Inspection(problems)
    try:
        return Inspection([], frozenset(undeclared_variables(source)), frozenset(placeholder_names(source)))
    except RenderError as err:  # compiled a moment ago; defensive
        return Inspection([TemplateIssue(path=path, message=err.message, line=err.line, kind=err.kind)])


async def inspect_prompts(doc: TemplateDocument, inspector: Inspector) -> dict[str, Inspection]:
    """Every prompt (top-level and each stage's) compiled by ``inspector``, by path (``prompts.user``,
    ``stages[0].prompts.system`` …)."""
    out: dict[str, Inspection] = {}
    for scope in prompt_scopes(doc):
        out[scope.path] = await inspector.inspect(scope.source, path=scope.path)
    return out


def _name_warnings(path: str, names: set[str], placeholders: set[str], declared: set[str]) -> list[Issue]:
    warnings = [
        Issue(
            path=path,
            message=(
                f"variable '{var}' is declared in neither variables, tasks, the seed nor the built-ins; "
                "rendering fails unless the request supplies it"
            ),
            kind="undefined_variable",
        )
        for var in sorted(names - declared)
    ]
    for ph in sorted(placeholders - declared):
        m = _SUFFIX.match(ph)
        if m and m["base"] in declared:
            continue
        warnings.append(
            Issue(
                path=path,
                message=f"placeholder '{{{ph}}}' matches no variable and will stay literal text",
                kind="unknown_placeholder",
            )
        )
    return warnings


def _prompt_issues(
    doc: TemplateDocument,
    report: ValidationReport,
    inspections: Mapping[str, Inspection] | None,
    declared: set[str],
) -> None:
    for scope in prompt_scopes(doc):
        found = _inspection(scope, inspections)
        for p in found.issues:
            report.errors.append(
                Issue(path=scope.path, message=p.message, line=p.line, column=p.column, kind=p.kind)
            )
        if found.issues:
            continue
        names = set(found.variables)
        report.errors.extend(stage_reference_issues(scope, names))
        visible = declared | scope.stages_visible
        forbidden = scope.stages_forbidden
        report.warnings.extend(
            _name_warnings(scope.path, names - forbidden, set(found.placeholders) - forbidden, visible)
        )


def _inspection(scope: PromptScope, inspections: Mapping[str, Inspection] | None) -> Inspection:
    if inspections is not None and scope.path in inspections:
        return inspections[scope.path]
    return _inspect_here(scope.source, scope.path)


def _schema_issues(doc: TemplateDocument, report: ValidationReport) -> bool:
    if doc.json_schema is None:
        return False
    issues = check_schema(doc.json_schema)
    for issue in issues:
        suffix = issue.path.lstrip("$").lstrip(".") if issue.path else ""
        report.errors.append(
            Issue(path=f"schema.{suffix}" if suffix else "schema", message=issue.message, kind="schema")
        )
    if doc.output.format == "text":
        report.warnings.append(
            Issue(path="schema", message="output.format is 'text': the schema is not used", kind="schema")
        )
    return not issues


def _rule_issues(doc: TemplateDocument, report: ValidationReport, schema_ok: bool) -> None:
    rules = doc.validation.rules
    if doc.validation.mode == "custom" and not rules:
        report.warnings.append(
            Issue(path="validation.rules", message="custom mode without rules accepts any JSON", kind="rules")
        )
    if not rules:
        return
    try:
        compile_rules(rules, output_format=doc.output.format)
    except RuleError as err:
        for problem in err.problems:
            report.errors.append(
                Issue(path=f"validation.rules[{problem.index}]", message=str(problem), kind="rules")
            )
        return
    if schema_ok and doc.json_schema is not None:
        for missing in rule_paths_missing_from_schema(rules, doc.json_schema):
            report.warnings.append(
                Issue(
                    path="validation.rules",
                    message=f"rule path '{missing}' is not in the schema",
                    kind="rules",
                )
            )


def validate_document(
    doc: TemplateDocument,
    inspections: Mapping[str, Inspection] | None = None,
    *,
    prompts: bool = True,
    seed_names: set[str] | None = None,
) -> ValidationReport:
    """Every problem of ``doc``. The prompts are compiled here unless ``inspections`` (from
    :func:`inspect_prompts`) are given; ``prompts=False`` skips them (schema and rules only). ``seed_names``: the
    columns the seed dataset brings (declared names; the service reads them from the dataset)."""
    report = ValidationReport(valid=True)
    declared = _declared(doc, seed_names)
    report.errors.extend(sampler_issues(doc))
    if prompts:
        _prompt_issues(doc, report, inspections, declared)
    schema_ok = _schema_issues(doc, report)
    _rule_issues(doc, report, schema_ok)
    report.errors.extend(judge_issues(doc))
    report.errors.extend(stage_issues(doc, declared))
    report.valid = not report.errors
    return report


def _document_of(payload: Any) -> TemplateDocument | ValidationReport:
    if not isinstance(payload, dict):
        return ValidationReport(
            valid=False, errors=[Issue(path="$", message="a template document is a JSON object")]
        )
    try:
        return TemplateDocument.model_validate(payload)
    except ValidationError as exc:
        return ValidationReport(valid=False, errors=shape_errors(exc))


def validate_payload(payload: Any) -> ValidationReport:
    """Validate raw JSON: shape errors first (then nothing else can be checked), then the content."""
    doc = _document_of(payload)
    return doc if isinstance(doc, ValidationReport) else validate_document(doc)


SeedCheck = Callable[[TemplateDocument], Awaitable[tuple[set[str], list[Issue]]]]


async def validate_payload_with(
    payload: Any, inspector: Inspector, seed: SeedCheck | None = None
) -> ValidationReport:
    """:func:`validate_payload` with the prompts compiled by ``inspector`` (the service's render pool: off the
    event loop, under the render deadline); ``seed`` reads the seed dataset's columns and checks it."""
    doc = _document_of(payload)
    if isinstance(doc, ValidationReport):
        return doc
    names, seed_problems = await seed(doc) if seed is not None else (set(), [])
    report = validate_document(doc, await inspect_prompts(doc, inspector), seed_names=names)
    report.errors.extend(seed_problems)
    report.valid = not report.errors
    return report
