"""docs/configuration.md must list every setting: regenerate with `make config-docs` after changing one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def test_configuration_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("settings_ref", ROOT / "scripts" / "settings_reference.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "docs" / "configuration.md").read_text() == mod.render(), "run `make config-docs`"
