"""``llmts templates …``: list, import (an example or an llm-data-gen config), validate, preview."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from llmts_client._cli_common import client, err, out, parse_vars

templates_app = typer.Typer(help="Templates: list, import, validate, preview.", no_args_is_help=True)

JsonFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A JSON file.")]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise typer.BadParameter(f"{path} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{path} must hold a JSON object")
    return value


@templates_app.command("list")
def list_templates(
    category: Annotated[str | None, typer.Option(help="Category, e.g. education.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag, e.g. quiz (repeat: all must match).")] = None,
    q: Annotated[str | None, typer.Option(help="Text in name and description.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only my own templates.")] = False,
    examples: Annotated[bool, typer.Option("--examples", help="The examples that can be imported.")] = False,
    limit: Annotated[int, typer.Option(help="Most rows to show.")] = 50,
) -> None:
    """My templates and public ones (or, with --examples, the importable examples)."""
    with client() as api:
        if examples:
            table = Table("example id", "name", "category", "format", title="examples")
            for ex in api.examples()[:limit]:
                table.add_row(str(ex.get("id")), str(ex.get("name")), str(ex.get("category") or ""),
                              str(ex.get("output_format") or ""))  # fmt: skip
            out.print(table)
            return
        table = Table(title="templates")
        for name in ("id", "name", "version", "category", "tags", "model"):
            table.add_column(name, overflow="fold")
        filters = {"category": category, "tag": tag, "q": q, "owner": "me" if mine else None}
        for n, t in enumerate(api.templates(**filters)):
            if n >= limit:
                break
            table.add_row(
                t.id, t.name, str(t.version or ""), t.category or "", ", ".join(t.tags), t.model_id or ""
            )
    out.print(table)


@templates_app.command("import")
def import_example(
    example_id: Annotated[str, typer.Argument(help="An example id (see `templates list --examples`).")],
    name: Annotated[str | None, typer.Option(help="Name of the copy.")] = None,
) -> None:
    """Copy an example into my templates; print the new template's id."""
    with client() as api:
        imported = api.import_example(example_id, name=name)
    err.print(f"imported {imported.template.name!r}")
    typer.echo(imported.template.id)


@templates_app.command("import-ldg")
def import_ldg(
    config: JsonFile,
    name: Annotated[str | None, typer.Option(help="Override meta.name.")] = None,
) -> None:
    """Import an llm-data-gen config file as it is; print the new template's id (and the mapping's notes)."""
    with client() as api:
        imported = api.import_llm_data_gen(_read_json(config), name=name)
    for note in imported.notes:
        err.print(f"[dim]note: {note}[/dim]")
    err.print(f"imported {imported.template.name!r}")
    typer.echo(imported.template.id)


@templates_app.command("validate")
def validate(document: JsonFile) -> None:
    """Check a template document (Jinja syntax with lines, variables, JSON Schema, rules); exit 1 if invalid."""
    with client() as api:
        report = api.validate_template(_read_json(document))
    for issue in report.errors:
        where = f":{issue.line}" if issue.line else ""
        err.print(f"[red]error[/red] {issue.path or ''}{where}: {issue.message}")
    for issue in report.warnings:
        err.print(f"[yellow]warning[/yellow] {issue.path or ''}: {issue.message}")
    typer.echo("valid" if report.valid else "invalid")
    if not report.valid:
        raise typer.Exit(1)


@templates_app.command("preview")
def preview(
    template_id: Annotated[str, typer.Argument()],
    index: Annotated[int, typer.Option(help="0-based item index in the job.")] = 0,
    var: Annotated[list[str] | None, typer.Option("--var", help="key=value.")] = None,
    count: Annotated[int | None, typer.Option("-n", "--count", help="Items, for the cost estimate.")] = None,
) -> None:
    """Render one item's prompts and show the provider request body and the estimates (JSON)."""
    body: dict[str, Any] = {"index": index, "variables": parse_vars(var)}
    if count is not None:
        body["count"] = count
    with client() as api:
        answer = api.preview_template(template_id, **body)
    typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
