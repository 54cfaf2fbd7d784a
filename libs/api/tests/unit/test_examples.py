"""Every example a model shows in the OpenAPI documents is valid for that model."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from pydantic import BaseModel

import llmts_api


def _models_with_examples() -> list[type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(llmts_api.__path__):
        module = importlib.import_module(f"llmts_api.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
                extra = obj.model_config.get("json_schema_extra")
                if isinstance(extra, dict) and extra.get("examples"):
                    out[obj.__qualname__] = obj
    return [out[name] for name in sorted(out)]


MODELS = _models_with_examples()


def test_the_answers_and_bodies_of_the_api_have_examples() -> None:
    names = {m.__name__ for m in MODELS}
    assert {"JobPublic", "GenerationCreate", "TemplatePublic", "ExportPublic", "TokenPairPublic"} <= names


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_example_validates_against_its_model(model: type[BaseModel]) -> None:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    assert isinstance(extra["examples"], list)
    for example in extra["examples"]:
        model.model_validate(example)
        assert model.model_json_schema()["examples"] == extra["examples"]


def test_an_example_that_does_not_fit_is_refused() -> None:
    """The check above can fail: a job example without its counts is not a JobPublic."""
    from llmts_api import examples as ex
    from llmts_api.generation import JobPublic

    broken = {k: v for k, v in ex.JOB.items() if k != "counts"}
    with pytest.raises(ValueError, match="counts"):
        JobPublic.model_validate(broken)
