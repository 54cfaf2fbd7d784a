"""The ``llmts`` CLI against the real stack (fake OpenRouter): log in, ``llmts run`` on llm-data-gen's own quiz
example (imports, runs and exports in one step), then ``templates import`` + ``generate`` + ``result`` +
``export`` + ``history`` + ``models`` — each as the user types it, in a subprocess, with its own config folder."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from services.templates.tests.integration.test_llm_data_gen_examples import _example_configs

from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

LLMTS = Path(sys.executable).with_name("llmts")


def llmts(stack: Stack, home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMTS_URL": stack.gateway, "LLMTS_CONFIG_DIR": str(home), "COLUMNS": "200"}
    proc = subprocess.run(
        [str(LLMTS), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"llmts {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_cli_logs_in_runs_an_llm_data_gen_config_and_exports(stack: Stack, tmp_path: Path) -> None:
    home = tmp_path / "config"
    email = f"cli-{stack.run_id}@example.com"
    llmts(stack, home, "login", "--register", "--email", email, "--password", "correct horse battery 42")
    creds = home / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(creds.read_text())["refresh_token"]

    # llm-data-gen's habit: one command from config to file
    config = tmp_path / "quiz.json"
    config.write_text(json.dumps(_example_configs()["quiz.json"], ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run = llmts(stack, home, "run", str(config), "-n", "20", "-o", str(out))
    assert run.stdout.strip() == str(out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 20
    assert all(isinstance(row, dict) and row for row in rows)

    # the step-by-step path: import an example, generate with a live bar, read the result, export as CSV
    template_id = llmts(stack, home, "templates", "import", "quiz").stdout.strip()
    listed = llmts(stack, home, "templates", "list", "--mine").stdout
    assert template_id in listed
    generated = llmts(stack, home, "generate", template_id, "-n", "5")
    job_id = generated.stdout.strip()
    assert "completed: 5 items" in generated.stderr
    items = llmts(stack, home, "result", job_id).stdout.splitlines()
    assert len(items) == 5
    assert all(isinstance(json.loads(line), dict) for line in items)
    exported = Path(
        llmts(stack, home, "export", job_id, "--format", "csv", "-o", str(tmp_path)).stdout.strip()
    )
    assert exported.parent == tmp_path
    assert exported.suffix == ".csv"
    with exported.open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 5
    assert job_id in llmts(stack, home, "history").stdout
    assert "openai/gpt-4o-mini" in llmts(stack, home, "models", "--q", "gpt-4o-mini").stdout
