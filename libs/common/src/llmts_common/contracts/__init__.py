"""Every command and event of the system, with a registry from wire type to model."""

from __future__ import annotations

from llmts_common.contracts import topics
from llmts_common.contracts.base import Message
from llmts_common.contracts.commands import (
    ExportRequested,
    GenerationCancelRequested,
    GenerationReopenRequested,
    GenerationRequested,
)
from llmts_common.contracts.common_models import (
    TERMINAL_STATUSES,
    Counts,
    FallbackModel,
    JobStatus,
    ModelRef,
    ModelUsed,
    OutputFormat,
    Prompts,
    TemplateSnapshot,
    Usage,
    ValidationMode,
    ValidationSpec,
)
from llmts_common.contracts.events import (
    ExportFailed,
    ExportReady,
    GenerationCancelled,
    GenerationCompleted,
    GenerationFailed,
    GenerationProgress,
    GenerationStarted,
    ItemGenerated,
    ItemRejected,
    ModelCatalogUpdated,
    TemplateCreated,
    TemplateDeleted,
    TemplateUpdated,
    UserDeleted,
    UserDisabled,
    UserEnabled,
    UserRegistered,
)

ALL_MESSAGES: tuple[type[Message], ...] = (
    GenerationRequested,
    GenerationCancelRequested,
    GenerationReopenRequested,
    ExportRequested,
    GenerationStarted,
    ItemGenerated,
    ItemRejected,
    GenerationProgress,
    GenerationCompleted,
    GenerationFailed,
    GenerationCancelled,
    ExportReady,
    ExportFailed,
    TemplateCreated,
    TemplateUpdated,
    TemplateDeleted,
    ModelCatalogUpdated,
    UserRegistered,
    UserDisabled,
    UserEnabled,
    UserDeleted,
)

REGISTRY: dict[str, type[Message]] = {m.TYPE: m for m in ALL_MESSAGES}

GENERATION_TERMINAL_EVENTS: tuple[type[Message], ...] = (
    GenerationCompleted,
    GenerationFailed,
    GenerationCancelled,
)

__all__ = [
    "ALL_MESSAGES",
    "GENERATION_TERMINAL_EVENTS",
    "REGISTRY",
    "TERMINAL_STATUSES",
    "Counts",
    "ExportFailed",
    "ExportReady",
    "ExportRequested",
    "FallbackModel",
    "GenerationCancelRequested",
    "GenerationCancelled",
    "GenerationCompleted",
    "GenerationFailed",
    "GenerationProgress",
    "GenerationReopenRequested",
    "GenerationRequested",
    "GenerationStarted",
    "ItemGenerated",
    "ItemRejected",
    "JobStatus",
    "Message",
    "ModelCatalogUpdated",
    "ModelRef",
    "ModelUsed",
    "OutputFormat",
    "Prompts",
    "TemplateCreated",
    "TemplateDeleted",
    "TemplateSnapshot",
    "TemplateUpdated",
    "Usage",
    "UserDeleted",
    "UserDisabled",
    "UserEnabled",
    "UserRegistered",
    "ValidationMode",
    "ValidationSpec",
    "topics",
]
