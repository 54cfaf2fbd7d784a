"""``llmts``: the command line on ``llmts_client.Client``.

Human output (tables, progress, messages) goes to stderr or is a Rich table; what a script captures goes to
stdout: ``generate`` prints the job id, ``result`` JSON lines, ``export`` and ``run`` the saved file's path.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmts_client._cli_common import client, err, out, parse_vars
from llmts_client._core import ApiError
from llmts_client._progress import follow
from llmts_client.cli_templates import templates_app
from llmts_client.client import Client
from llmts_client.config import Credentials

app = typer.Typer(
    name="llmts",
    help="LLM Template System from the command line (LLMTS_URL, default http://127.0.0.1:8000).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(templates_app, name="templates")

FORMAT_BY_SUFFIX = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".pdf": "pdf",
    ".md": "md",
    ".html": "html",
    ".xml": "xml",
    ".txt": "txt",
    ".parquet": "parquet",
}


def format_for(path: Path, explicit: str | None) -> str:
    if explicit:
        return explicit
    fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise typer.BadParameter(f"cannot tell the format from {path.name!r}: pass --format")
    return fmt


def _price(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


# ------------------------------------------------------------------------------------------------ account
@app.command()
def login(
    email: Annotated[str, typer.Option(prompt=True, help="Account e-mail.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Password.")],
    url: Annotated[
        str | None, typer.Option(help="Gateway URL to store (else LLMTS_URL or the stored one).")
    ] = None,
    register: Annotated[bool, typer.Option("--register", help="Create the account first.")] = False,
) -> None:
    """Log in and store the tokens in ~/.config/llmts/credentials.json (0600)."""
    creds = Credentials.load()
    if url:
        creds.url = url.rstrip("/")
    creds.email = email
    with Client(creds.url, on_tokens=creds.update) as api:
        if register:
            api.register(email, password)
        api.login(email, password)
    err.print(f"logged in as {email} at {creds.url} (tokens in {Credentials.path()})")


# ------------------------------------------------------------------------------------------------ catalog
@app.command()
def models(
    provider: Annotated[str | None, typer.Option(help="openrouter | ollama | openai-compatible")] = None,
    free: Annotated[bool | None, typer.Option("--free/--paid", help="Only free or only paid models.")] = None,
    q: Annotated[str | None, typer.Option(help="Text in the id or name.")] = None,
    structured: Annotated[bool, typer.Option("--structured", help="Only JSON-schema capable.")] = False,
    min_context: Annotated[int | None, typer.Option(help="Smallest context length.")] = None,
    sort: Annotated[str | None, typer.Option(help="Sort key, e.g. price_prompt, context_length.")] = None,
    limit: Annotated[int, typer.Option(help="Most rows to show.")] = 50,
) -> None:
    """Models of the catalog with their prices (USD per 1M tokens)."""
    table = Table(title="models")
    for name in ("model", "provider", "context", "prompt $/1M", "completion $/1M", "json"):
        table.add_column(name, overflow="fold")
    filters = {"provider": provider, "free": free, "q": q, "min_context": min_context, "sort": sort}
    filters["structured_output"] = True if structured else None
    with client() as api:
        for n, m in enumerate(api.models(**filters, verbose=False)):
            if n >= limit:
                break
            context = str(m.context_length) if m.context_length else "–"
            table.add_row(
                m.id, m.provider, context, _price(m.pricing.prompt), _price(m.pricing.completion),
                "yes" if m.structured_output else "",
            )  # fmt: skip
    out.print(table)


# ------------------------------------------------------------------------------------------------ generation
@app.command()
def generate(
    template_id: Annotated[str, typer.Argument(help="The template to run.")],
    count: Annotated[int | None, typer.Option("-n", "--count", help="Valid items wanted.")] = None,
    model: Annotated[str | None, typer.Option(help="Model id (overrides the template's).")] = None,
    var: Annotated[list[str] | None, typer.Option("--var", help="key=value, for every item.")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Stop spending beyond this (USD).")] = None,
    watch: Annotated[bool, typer.Option("--watch/--no-watch", help="Show live progress.")] = True,
) -> None:
    """Start a job; print its id, then follow it with a progress bar (Ctrl-C asks whether to cancel)."""
    with client() as api:
        accepted = api.generate(
            template_id, count=count, model=model, variables=parse_vars(var) or None, max_cost_usd=max_cost
        )
        typer.echo(accepted.job_id)
        if watch:
            job = follow(api, accepted.job_id, err)
            _summary(job.status, job.counts.succeeded, job.counts.rejected, job.usage.cost_usd)
            if job.status == "failed":
                raise typer.Exit(1)


def _summary(status: str, succeeded: int, rejected: int, cost: float) -> None:
    err.print(f"{status}: {succeeded} items, {rejected} rejected, ${cost:.4f}")


@app.command()
def result(
    job_id: Annotated[str, typer.Argument()],
    rejected: Annotated[bool, typer.Option("--rejected", help="Include rejected items.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Whole item records, not only their data.")] = False,
) -> None:
    """Items of a job as JSON lines (the data of each; --full for index, attempts, usage)."""
    with client() as api:
        job = api.job(job_id)
        if not job.terminal:
            err.print(f"[yellow]job is {job.status}: the items so far[/yellow]")
        for item in api.result(job_id, include_rejected=rejected):
            line = item.model_dump(mode="json") if full else item.data
            typer.echo(json.dumps(line, ensure_ascii=False))


@app.command()
def export(
    job_id: Annotated[str, typer.Argument()],
    output: Annotated[Path, typer.Option("-o", "--output", help="File, or a folder (server's file name).")],
    format: Annotated[
        str | None, typer.Option("--format", "-f", help="Default: from the file's suffix.")
    ] = None,
    envelope: Annotated[bool, typer.Option(help="json/xml: wrap items with metadata.")] = False,
) -> None:
    """Export a job's items (waits for the job and the export) and save the file."""
    fmt = format or ("json" if output.is_dir() else format_for(output, None))
    options = {"envelope": True} if envelope else None
    with client() as api, err.status(f"waiting for the {fmt} export (the job must have ended)…"):
        saved = api.export_to(job_id, output, format=fmt, options=options)
    typer.echo(saved)


@app.command()
def history(
    status: Annotated[str | None, typer.Option(help="completed, failed, running …")] = None,
    template_id: Annotated[str | None, typer.Option("--template", help="Template id.")] = None,
    model: Annotated[str | None, typer.Option(help="Model id.")] = None,
    q: Annotated[str | None, typer.Option(help="Text in template name, job id or model.")] = None,
    limit: Annotated[int, typer.Option(help="Most rows to show.")] = 20,
) -> None:
    """My jobs, newest first."""
    table = Table(title="history")
    for name in ("job", "status", "template", "model", "items", "rejected", "cost $"):
        table.add_column(name, overflow="fold")
    with client() as api:
        jobs = api.history(status=status, template_id=template_id, model=model, q=q)
        for n, job in enumerate(jobs):
            if n >= limit:
                break
            template = (job.template or {}).get("name") or (job.template or {}).get("id") or ""
            table.add_row(
                job.job_id, job.status, str(template), str((job.model or {}).get("id", "")),
                str(job.counts.succeeded), str(job.counts.rejected), f"{job.usage.cost_usd:.4f}",
            )  # fmt: skip
    out.print(table)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="llm-data-gen config (JSON).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to save the items.")],
    count: Annotated[
        int | None, typer.Option("-n", "--count", help="Items (default: the config's tasks).")
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", "-f", help="Default: from the file's suffix.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model id (overrides the config's).")] = None,
) -> None:
    """Import an llm-data-gen config, run it and export the items in one step."""
    fmt = format_for(output, format)
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise typer.BadParameter(f"{config} is not JSON: {exc}") from exc
    with client() as api:
        imported = api.import_llm_data_gen(document)
        for note in imported.notes:
            err.print(f"[dim]note: {note}[/dim]")
        template = imported.template
        err.print(f"template {template.id} ({template.name})")
        accepted = api.generate(template.id, count=count, model=model)
        err.print(f"job {accepted.job_id}")
        job = follow(api, accepted.job_id, err)
        _summary(job.status, job.counts.succeeded, job.counts.rejected, job.usage.cost_usd)
        if job.status == "failed":
            raise typer.Exit(1)
        with err.status(f"exporting {fmt}…"):
            saved = api.export_to(job.job_id, output, format=fmt)
    typer.echo(saved)


def main() -> None:
    """Entry point: API errors as one line on stderr, exit status 1."""
    try:
        app()
    except ApiError as exc:
        err.print(f"[red]error {exc.status} {exc.code}[/red]: {exc.message}")
        if exc.details:
            err.print(json.dumps(exc.details, ensure_ascii=False, default=str)[:2000])
        sys.exit(1)
    except TimeoutError as exc:
        err.print(f"[red]timeout[/red]: {exc}")
        sys.exit(1)
