"""The public REST API: mounts every resource router."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter, FastAPI

from llmts_gateway.entrypoints import routes


def mount_routes(app: FastAPI) -> None:
    """Include ``router`` of every module in ``entrypoints/routes`` (one module per resource)."""
    for info in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{routes.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            app.include_router(router)
