"""docs/asyncapi.yaml must match the contracts: regenerate with `make asyncapi` after changing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def _module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("asyncapi_gen", ROOT / "scripts" / "asyncapi.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_asyncapi_document_is_current() -> None:
    mod = _module()
    assert (ROOT / "docs" / "asyncapi.yaml").read_text() == mod.render(), "run `make asyncapi`"


def test_every_message_has_a_channel_and_an_operation() -> None:
    doc = _module().build()
    names = set(doc["components"]["messages"])
    in_channels = {m for ch in doc["channels"].values() for m in ch["messages"]}
    assert names == in_channels
    assert len(names) == 21
    sent = {
        ref["$ref"].rsplit("/", 1)[-1]
        for op in doc["operations"].values()
        if op["action"] == "send"
        for ref in op["messages"]
    }
    assert sent == names
