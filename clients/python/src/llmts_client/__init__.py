"""Python client of the LLM Template System's public API: ``Client`` (blocking) and ``AsyncClient`` (asyncio).

from llmts_client import Client

with Client("http://127.0.0.1:8000") as api:
    api.login("ada@example.com", "correct horse battery staple")
    template = api.import_example("quiz").template
    job = api.generate(template.id, count=10)
    for event in api.watch(job.job_id):
        print(event.type, event.data.get("succeeded"))
    api.export_to(job.job_id, "quiz.xlsx", format="xlsx")
"""

from llmts_client._core import ApiError, ExportFailed
from llmts_client.aio import AsyncClient
from llmts_client.client import Client
from llmts_client.models import (
    TERMINAL_STATUSES,
    Event,
    Export,
    Imported,
    Item,
    Job,
    JobAccepted,
    Model,
    Page,
    Progress,
    Result,
    Template,
    TemplateSummary,
    Tokens,
    User,
    ValidationReport,
)

__all__ = [
    "TERMINAL_STATUSES",
    "ApiError",
    "AsyncClient",
    "Client",
    "Event",
    "Export",
    "ExportFailed",
    "Imported",
    "Item",
    "Job",
    "JobAccepted",
    "Model",
    "Page",
    "Progress",
    "Result",
    "Template",
    "TemplateSummary",
    "Tokens",
    "User",
    "ValidationReport",
]
