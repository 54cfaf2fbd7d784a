"""The error-code vocabulary is one documented table (docs/errors.md): every code a service raises is in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
_RAISED = re.compile(r"""\bcode\s*=\s*["']([a-z][a-z0-9_]*)["']|_Reject\(\d{3}, ["']([a-z][a-z0-9_]*)["']""")
_LISTED = re.compile(r"`([a-z][a-z0-9_]*)`")


def _raised_codes() -> set[str]:
    codes: set[str] = set()
    for src in [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")]:
        if (
            "libs/providers/" in src.as_posix()
        ):  # provider failures: job/attempt error codes, not HTTP answers
            continue
        codes.update(c for pair in _RAISED.findall(src.read_text(encoding="utf-8")) for c in pair if c)
    return codes


def _table_codes() -> set[str]:
    table = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8").split("| code | HTTP | meaning |", 1)[1]
    return {
        code
        for line in table.splitlines()
        if line.startswith("| `")
        for code in _LISTED.findall(line.split("|")[1])
    }


def test_every_raised_code_is_in_the_documented_table() -> None:
    raised = _raised_codes()
    assert {"job_not_found", "validation_error", "not_found"} <= raised  # the scan finds them
    assert sorted(raised - _table_codes()) == []


def test_a_missing_job_has_one_code() -> None:
    assert "job_not_found" in _table_codes()
    for src in [*ROOT.glob("services/*/src/**/*.py")]:
        text = src.read_text(encoding="utf-8")
        assert not re.search(r'NotFound\(\s*"(generation )?job not found"\s*\)', text), src
        assert not re.search(r'NotFound\(\s*"generation job not found",\s*details', text), src
