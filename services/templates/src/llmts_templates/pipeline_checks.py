"""Checks of the dataset-grade template fields (issue 18): samplers among ``variables``, ``seed``, ``judge`` and
``stages``. Each problem is an :class:`~llmts_templates.checks.Issue` at its document path (``variables.tone.weights``,
``judge.accept``, ``stages[1].prompts.user`` …), so a save answers 422 ``validation_error`` naming it.

Stage scopes: the top-level prompts (stage ``main``) may not name any stage; stage ``i``'s prompts may name ``main``
and the stages before it, not itself nor a later one (those outputs do not exist yet when it renders).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from llmts_api.template_document import MAIN_STAGE
from llmts_templates.domain.document import TemplateDocument
from llmts_templates.domain.issues import Issue
from llmts_templates.domain.ports import DatasetCatalog
from llmts_templating.judge import JudgeError, JudgeRules
from llmts_templating.samplers import SamplerError, SamplerPlan
from llmts_templating.validation import RuleError, check_schema, compile_rules


@dataclass(frozen=True)
class PromptScope:
    """One prompt to check: its path, its source, the stage names it may use and those it must not."""

    path: str
    source: str
    stages_visible: frozenset[str]
    stages_forbidden: frozenset[str]


def prompt_scopes(doc: TemplateDocument) -> Iterator[PromptScope]:
    names = [s.name for s in doc.stages]
    everything = frozenset(names)
    for part, source in (("system", doc.prompts.system), ("user", doc.prompts.user)):
        yield PromptScope(f"prompts.{part}", source, frozenset(), everything)
    for i, stage in enumerate(doc.stages):
        visible = frozenset({MAIN_STAGE, *names[:i]})
        forbidden = frozenset(names[i:]) - visible
        for part, source in (("system", stage.prompts.system), ("user", stage.prompts.user)):
            yield PromptScope(f"stages[{i}].prompts.{part}", source, visible, forbidden)


def stage_reference_issues(scope: PromptScope, used: set[str]) -> list[Issue]:
    """A prompt naming a stage whose output does not exist yet when it renders."""
    issues = []
    for name in sorted(used & scope.stages_forbidden):
        where = "the top-level prompts (stage 'main')" if scope.path.startswith("prompts.") else "this stage"
        issues.append(
            Issue(
                path=scope.path,
                message=f"'{name}' is a stage that runs after {where}: a stage may use only the outputs of "
                "'main' and the stages before it",
                kind="stage_reference",
            )
        )
    return issues


def sampler_issues(doc: TemplateDocument) -> list[Issue]:
    try:
        SamplerPlan.from_variables(doc.variables)
    except SamplerError as err:
        return [Issue(path=err.path, message=err.message, kind="sampler")]
    return []


def judge_issues(doc: TemplateDocument) -> list[Issue]:
    judge = doc.judge
    if judge is None:
        return []
    try:
        JudgeRules.build(judge.rubric, judge.scores, judge.accept)
    except JudgeError as err:
        return [Issue(path=err.path, message=err.message, kind="judge")]
    return []


def _stage_name_issues(doc: TemplateDocument, declared: set[str]) -> list[Issue]:
    issues: list[Issue] = []
    main_props = set((doc.json_schema or {}).get("properties") or {})
    seen: set[str] = set()
    for i, stage in enumerate(doc.stages):
        path, name = f"stages[{i}].name", stage.name
        problem = None
        if name == MAIN_STAGE:
            problem = f"'{MAIN_STAGE}' is the top-level stage's name"
        elif name in seen:
            problem = f"stage name '{name}' is used twice"
        elif name in declared:
            problem = f"stage name '{name}' is also a variable (variables, tasks, seed columns or built-ins)"
        elif name in main_props:
            problem = f"stage name '{name}' is a property of the top-level schema; the item holds it under this name"
        if problem:
            issues.append(Issue(path=path, message=problem, kind="stage"))
        seen.add(name)
    return issues


def _stage_content_issues(doc: TemplateDocument) -> list[Issue]:
    issues: list[Issue] = []
    for i, stage in enumerate(doc.stages):
        schema_problems = check_schema(stage.json_schema)
        for problem in schema_problems:
            suffix = problem.path.lstrip("$").lstrip(".") if problem.path else ""
            path = f"stages[{i}].schema" + (f".{suffix}" if suffix else "")
            issues.append(Issue(path=path, message=problem.message, kind="schema"))
        if not stage.validation.rules:
            continue
        try:
            compile_rules(stage.validation.rules, output_format="json")
        except RuleError as err:
            for rule in err.problems:
                issues.append(
                    Issue(path=f"stages[{i}].validation.rules[{rule.index}]", message=str(rule), kind="rules")
                )
    return issues


def stage_issues(doc: TemplateDocument, declared: set[str]) -> list[Issue]:
    """Names (unique, not ``main``, no clash with a variable or a top-level property), json output, each
    stage's schema and rules."""
    if not doc.stages:
        return []
    issues = []
    if doc.output.format != "json":
        issues.append(Issue(path="stages", message="stages need output.format 'json'", kind="stage"))
    return issues + _stage_name_issues(doc, declared) + _stage_content_issues(doc)


async def seed_columns(
    doc: TemplateDocument, *, owner_id: str, datasets: DatasetCatalog | None
) -> tuple[set[str], list[Issue]]:
    """The names a seed row brings (its columns, or ``seed.columns``) and the seed's problems: the dataset must
    exist and belong to ``owner_id``; ``seed.columns`` must be columns of it; a public template cannot have a seed
    (datasets are private to their owner: a job of another user could not read it)."""
    seed = doc.seed
    if seed is None:
        return set(), []
    issues: list[Issue] = []
    if doc.visibility == "public":
        issues.append(
            Issue(
                path="seed",
                message="a public template cannot have a seed dataset (datasets are private to their owner); "
                "keep the template private or give the seed with each job",
                kind="seed",
            )
        )
    if datasets is None:
        return set(seed.columns or []), issues
    dataset = await datasets.get(seed.dataset_id)
    if dataset is None or dataset.get("owner_id") != owner_id:
        issues.append(Issue(path="seed.dataset_id", message="dataset not found", kind="seed"))
        return set(seed.columns or []), issues
    available = [str(c["name"]) for c in dataset.get("columns") or []]
    if seed.columns is None:
        return set(available), issues
    for j, column in enumerate(seed.columns):
        if column not in available:
            issues.append(
                Issue(
                    path=f"seed.columns[{j}]",
                    message=f"column '{column}' is not in the dataset (it has: {', '.join(available[:20])})",
                    kind="seed",
                )
            )
    return set(seed.columns) & set(available), issues
