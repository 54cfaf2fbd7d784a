"""Every page parameter of every query model is bounded: a huge offset is a 422, never an int64 overflow (500)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError

import llmts_api
from llmts_api.catalog import ModelsQuery
from llmts_api.generation import HistoryQuery, ResultQuery
from llmts_api.paging import MAX_OFFSET
from llmts_api.templates import TemplatesQuery, VersionsQuery

_PAGE_FIELDS = ("offset", "limit", "after")


def _query_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for info in pkgutil.iter_modules(llmts_api.__path__):
        module = importlib.import_module(f"llmts_api.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseModel) and obj.__name__.endswith("Query") and obj not in found:
                found.append(obj)
    return found


def test_every_page_parameter_has_an_upper_bound() -> None:
    models = _query_models()
    assert len(models) >= 5
    for model in models:
        for name, field in model.model_fields.items():
            if name in _PAGE_FIELDS:
                uppers = [m for m in field.metadata if isinstance(m, annotated_types.Le | annotated_types.Lt)]
                assert uppers, f"{model.__name__}.{name} has no upper bound"


@pytest.mark.parametrize("model", [ResultQuery, HistoryQuery, VersionsQuery, TemplatesQuery, ModelsQuery])
@pytest.mark.parametrize("offset", [2**63, 2**63 - 1, MAX_OFFSET + 1, -1])
def test_out_of_range_offsets_are_refused(model: type[BaseModel], offset: int) -> None:
    with pytest.raises(ValidationError):
        model.model_validate({"offset": str(offset)})
    assert model.model_validate({"offset": "0"}).model_dump()["offset"] == 0
