"""The ``llmts`` command line on a client bound to the in-process fake gateway (Typer's CliRunner)."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from clients.python.tests.unit.fake_gateway import FakeGateway, job_events
from rich.console import Console
from typer.testing import CliRunner

from llmts_client import Client, Event, Tokens
from llmts_client import cli as cli_module
from llmts_client._progress import follow
from llmts_client.config import Credentials

pytestmark = pytest.mark.unit


def fake_client(fake: FakeGateway) -> Client:
    # port 1: the WebSocket is refused at once and watch falls back to SSE, which the fake serves
    return Client(
        "http://127.0.0.1:1", transport=httpx.MockTransport(fake), access_token="access-1", poll_interval=0.0
    )


def test_credentials_are_created_0600_and_llmts_url_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMTS_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("LLMTS_URL", raising=False)
    creds = Credentials(url="http://gw:8000", email="ada@example.com")
    creds.update(Tokens(access_token="a1", refresh_token="r1"))
    path = Credentials.path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Credentials.load().refresh_token == "r1"
    assert Credentials.load().url == "http://gw:8000"
    monkeypatch.setenv("LLMTS_URL", "http://other:9000/")
    assert Credentials.load().url == "http://other:9000"


def test_run_imports_the_config_runs_it_and_saves_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeGateway(events=job_events(), export_polls_before_ready=1)
    monkeypatch.setattr(cli_module, "client", lambda: fake_client(fake))
    config = tmp_path / "quiz.json"
    config.write_text(json.dumps({"meta": {"name": "Quiz"}, "generation": {"tasks": []}}))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli_module.app, ["run", str(config), "-n", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("out.jsonl")
    assert out.read_bytes() == b'{"n": 0}\n'
    posted = [
        json.loads(r.content) for r in fake.requests if r.method == "POST" and r.url.path == "/generate"
    ]
    assert posted == [{"template_id": "t-ldg", "count": 2}]
    export = [json.loads(r.content) for r in fake.requests if r.url.path == "/exports"]
    assert export == [{"job_id": "j1", "format": "jsonl", "options": {}}]


def test_run_refuses_an_output_whose_format_it_cannot_tell(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text("{}")
    result = CliRunner().invoke(cli_module.app, ["run", str(config), "-o", str(tmp_path / "out.weird")])
    assert result.exit_code == 2
    assert "--format" in result.output


class InterruptedOnce(Client):
    """A client whose first watch is interrupted by Ctrl-C (as a user would), then runs to the end."""

    interrupted = False

    def watch(self, job_id: str, *, transport: str = "auto") -> Iterator[Event]:  # type: ignore[override]
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        yield from super().watch(job_id, transport="sse")


@pytest.mark.parametrize(("answer", "cancelled"), [("y\n", True), ("n\n", False)])
def test_ctrl_c_asks_whether_to_cancel(answer: str, cancelled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGateway(events=job_events())
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    api = InterruptedOnce("http://gw.test", transport=httpx.MockTransport(fake), access_token="access-1")
    job = follow(api, "j1", Console(file=io.StringIO()))
    assert job.status == "completed"
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert len(deletes) == int(cancelled)


def test_the_bar_reads_the_eta_of_the_status_and_of_progress_events() -> None:
    from llmts_client._progress import JobView

    view = JobView()
    status = {
        "status": "running",
        "requested": 10,
        "counts": {"succeeded": 4},
        "progress": {"percent": 40.0, "eta_seconds": 75},
    }
    view.apply(Event(type="snapshot", data=status))
    assert (view.requested, view.succeeded, view.eta_text()) == (10, 4, "ETA 1:15")
    view.apply(
        Event(
            type="progress",
            data={"requested": 10, "succeeded": 6, "eta_seconds": 5, "usage": {"cost_usd": 0.5}},
        )
    )
    assert (view.succeeded, view.cost_usd, view.eta_text()) == (6, 0.5, "ETA 0:05")
    view.apply(Event(type="completed", data={"status": "stopped", "requested": 10, "succeeded": 7}))
    assert view.status == "stopped"
