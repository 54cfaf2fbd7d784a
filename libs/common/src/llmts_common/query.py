"""Unknown query parameters answer 422 instead of being silently ignored (``?tags=x`` for ``?tag=x``).

Usage: a dependency on a router (or on one route, or on the app)::

    router = APIRouter(prefix="/templates", dependencies=[Depends(reject_unknown_query)])

The accepted names are those the matched route declares, read from its FastAPI dependant once and cached: plain
``Query()`` parameters (by alias), every field of a query model (``Annotated[SomeQuery, Query()]``, by alias and,
with ``populate_by_name``, by name) and those of the route's sub-dependencies. Anything else is a
``validation_error`` (422) with one detail per unknown name, ``{"loc": ["query", name], "msg", "type":
"extra_forbidden"}`` — the same body as any other invalid parameter. Declaring ``extra="forbid"`` on query models
as well is harmless (this check runs first, among the router's dependencies).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel

_CACHE_ATTR = "_llmts_query_names"  # kept on the route itself (routes are not hashable)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model of a query-model parameter (``Model`` or ``Model | None``), else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _model_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    by_name = bool(model.model_config.get("populate_by_name") or model.model_config.get("validate_by_name"))
    for name, info in model.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
        names.add(alias or name)
        if by_name or not alias:
            names.add(name)
    return names


def allowed_query_params(route: APIRoute) -> frozenset[str]:
    """Every query parameter name ``route`` accepts (its own and its dependencies', query models flattened)."""
    cached: frozenset[str] | None = getattr(route, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        for field in dependant.query_params:
            model = _model_of(field.field_info.annotation)
            names.update(_model_names(model) if model is not None else {field.alias})
        pending.extend(dependant.dependencies)
    allowed = frozenset(names)
    setattr(route, _CACHE_ATTR, allowed)
    return allowed


async def reject_unknown_query(request: Request) -> None:
    """FastAPI dependency: 422 ``validation_error`` when the query string has a name the route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    allowed = allowed_query_params(route)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in allowed]
    if not unknown:
        return
    accepted = ", ".join(sorted(allowed)) or "none"
    raise RequestValidationError(
        [
            {
                "type": "extra_forbidden",
                "loc": ("query", name),
                "msg": f"unknown query parameter (accepted: {accepted})",
                "input": request.query_params.get(name),
            }
            for name in unknown
        ]
    )
