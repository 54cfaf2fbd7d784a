"""The sync and async clients against an in-process fake gateway (httpx.MockTransport)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from clients.python.tests.unit.fake_gateway import FakeGateway, job_events

from llmts_client import ApiError, AsyncClient, Client, ExportFailed, Tokens
from llmts_client._core import SseDecoder, filename_of, ws_url

pytestmark = pytest.mark.unit


def sync_client(fake: FakeGateway, **kw: object) -> Client:
    return Client("http://gw.test", transport=httpx.MockTransport(fake), poll_interval=0.0, **kw)  # type: ignore[arg-type]


def async_client(fake: FakeGateway) -> AsyncClient:
    return AsyncClient("http://gw.test", transport=httpx.MockTransport(fake), poll_interval=0.0)


def test_login_then_an_expired_token_is_refreshed_once_and_the_request_retried() -> None:
    fake = FakeGateway(templates=3)
    stored: list[Tokens] = []
    with sync_client(fake, on_tokens=stored.append) as api:
        api.login("ada@example.com", "pw")
        fake.expire()
        names = [t.name for t in api.templates()]
    assert names == ["template 0", "template 1", "template 2"]
    assert fake.refreshes == 1
    assert [t.access_token for t in stored] == ["access-1", "access-2"]
    assert [r.url.path for r in fake.requests] == ["/auth/login", "/templates", "/auth/refresh", "/templates"]


def test_a_refused_refresh_raises_the_refresh_error_without_looping() -> None:
    fake = FakeGateway(templates=1, refuse_refresh=True)
    with sync_client(fake) as api:
        api.login("ada@example.com", "pw")
        fake.expire()
        with pytest.raises(ApiError) as caught:
            api.job("j1")
    assert caught.value.status == 401
    assert caught.value.code == "invalid_refresh_token"
    assert [r.url.path for r in fake.requests].count("/auth/refresh") == 1


def test_wrong_password_is_an_api_error_with_the_servers_code() -> None:
    with sync_client(FakeGateway()) as api, pytest.raises(ApiError) as caught:
        api.login("ada@example.com", "nope")
    assert (caught.value.status, caught.value.code) == (401, "invalid_credentials")


def test_lists_are_iterated_page_after_page_until_total() -> None:
    fake = FakeGateway(templates=250)
    with sync_client(fake, access_token="access-1") as api:
        ids = [t.id for t in api.templates(category="education", tag=None)]
    assert ids == [f"t{i}" for i in range(250)]
    pages = [r.url.params for r in fake.requests]
    assert [(p["offset"], p["limit"]) for p in pages] == [("0", "100"), ("100", "100"), ("200", "100")]
    assert all(p["category"] == "education" and "tag" not in p for p in pages)


def test_extra_fields_of_a_newer_server_are_kept() -> None:
    with sync_client(FakeGateway(templates=1), access_token="access-1") as api:
        (summary,) = list(api.templates())
    assert summary.model_extra == {
        "a_field_from_a_newer_server": True,
        "owner_id": "u1",
        "created_at": summary.model_extra["created_at"],
    }


@pytest.mark.parametrize("wrapped", [True, False])
def test_imports_read_both_answer_shapes(wrapped: bool) -> None:
    with sync_client(FakeGateway(import_wrapped=wrapped), access_token="access-1") as api:
        imported = api.import_example("quiz")
    assert imported.template.id == "t-quiz"
    assert imported.template.name == "Quiz questions"


def test_llm_data_gen_import_keeps_the_notes() -> None:
    with sync_client(FakeGateway(), access_token="access-1") as api:
        imported = api.import_llm_data_gen({"meta": {"name": "Quiz"}, "generation": {"tasks": []}})
    assert imported.template.name == "Quiz"
    assert imported.notes == ["api.baseUrl is not kept"]


def test_generate_sends_a_model_id_as_an_object_and_drops_unset_options() -> None:
    fake = FakeGateway()
    with sync_client(fake, access_token="access-1") as api:
        accepted = api.generate("t-quiz", count=3, model="openai/gpt-4o-mini", max_cost_usd=None)
    assert accepted.job_id == "j1"
    assert json.loads(fake.requests[-1].content) == {
        "template_id": "t-quiz",
        "count": 3,
        "model": {"id": "openai/gpt-4o-mini"},
    }


def test_result_iterates_every_item() -> None:
    fake = FakeGateway(items=130)
    with sync_client(fake, access_token="access-1") as api:
        items = list(api.result("j1"))
    assert [i.index for i in items] == list(range(130))
    assert len(fake.requests) == 2


def test_download_waits_through_the_running_answers_then_saves_under_the_servers_name(tmp_path: Path) -> None:
    fake = FakeGateway(export_polls_before_ready=3)
    with sync_client(fake, access_token="access-1") as api:
        saved = api.export_to("j1", tmp_path, format="jsonl")
    assert saved == tmp_path / "quiz-questions-2026-12-06-j1.jsonl"
    assert saved.read_bytes() == b'{"n": 0}\n'
    assert fake.export_polls == 4
    assert not list(tmp_path.glob("*.part"))


def test_download_to_an_explicit_file_name(tmp_path: Path) -> None:
    with sync_client(FakeGateway(export_polls_before_ready=0), access_token="access-1") as api:
        saved = api.download("e1", tmp_path / "out.jsonl")
    assert saved == tmp_path / "out.jsonl"
    assert saved.read_bytes() == b'{"n": 0}\n'


def test_a_failed_export_raises_with_its_reason(tmp_path: Path) -> None:
    with (
        sync_client(FakeGateway(export_fails=True), access_token="access-1") as api,
        pytest.raises(ExportFailed) as caught,
    ):
        api.download("e1", tmp_path)
    assert caught.value.message == "the job failed"


def test_download_gives_up_after_max_wait(tmp_path: Path) -> None:
    fake = FakeGateway(export_polls_before_ready=10**9)
    with sync_client(fake, access_token="access-1") as api, pytest.raises(TimeoutError):
        api.download("e1", tmp_path, max_wait=0.0)


def test_watch_over_sse_yields_until_the_terminal_event() -> None:
    fake = FakeGateway(events=job_events())
    with sync_client(fake, access_token="access-1") as api:
        events = list(api.watch("j1", transport="sse"))
    assert [e.type for e in events] == [
        "snapshot",
        "started",
        "item_generated",
        "progress",
        "item_generated",
        "completed",
    ]
    assert events[3].data["eta_seconds"] == 3
    assert events[-1].terminal


def test_watch_falls_back_to_sse_when_the_websocket_cannot_connect() -> None:
    fake = FakeGateway(events=job_events())
    # nothing listens on port 1: the WebSocket connection is refused, the SSE request goes to the fake
    api = Client("http://127.0.0.1:1", transport=httpx.MockTransport(fake), access_token="access-1")
    with api:
        types = [e.type for e in api.watch("j1")]
    assert types[-1] == "completed"
    assert fake.requests[-1].url.path == "/generate/j1/events"


def test_wait_polls_until_a_terminal_status() -> None:
    fake = FakeGateway(job_status="running")
    with sync_client(fake, access_token="access-1") as api, pytest.raises(TimeoutError):
        api.wait("j1", max_wait=0.0)
    fake.job_status = "completed_with_errors"
    with sync_client(fake, access_token="access-1") as api:
        job = api.wait("j1")
    assert job.terminal
    assert job.usage.cost_usd == 0.0125


async def test_async_client_refreshes_pages_watches_and_downloads(tmp_path: Path) -> None:
    fake = FakeGateway(templates=120, events=job_events(), export_polls_before_ready=1)
    async with async_client(fake) as api:
        await api.login("ada@example.com", "pw")
        fake.expire()
        ids = [t.id async for t in api.templates()]
        events = [e.type async for e in api.watch("j1", transport="sse")]
        saved = await api.export_to("j1", tmp_path, format="jsonl")
    assert len(ids) == 120
    assert fake.refreshes == 1
    assert events[-1] == "completed"
    assert saved.name == "quiz-questions-2026-12-06-j1.jsonl"


def test_sse_decoder_joins_data_lines_and_ignores_comments() -> None:
    decoder = SseDecoder()
    lines = [
        ": ping",
        "event: progress",
        'data: {"type": "llmts.generation.progress",',
        'data: "data": {"succeeded": 4}}',
        "",
    ]
    events = [decoder.feed(line) for line in lines]
    assert events[:-1] == [None] * 4
    assert events[-1] is not None
    assert (events[-1].type, events[-1].data) == ("progress", {"succeeded": 4})


def test_download_file_names_never_leave_the_folder() -> None:
    def named(header: str) -> str:
        return filename_of(httpx.Response(200, headers={"content-disposition": header}), "fallback.bin")

    assert named("attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd") == "passwd"
    assert named('attachment; filename="../x.csv"') == "x.csv"
    assert (
        named("attachment; filename*=UTF-8''%D0%B2%D0%B8%D0%BA%D1%82%D0%BE%D1%80%D0%B8%D0%BD%D0%B0.pdf")
        == "викторина.pdf"
    )
    assert named("attachment") == "fallback.bin"


def test_websocket_url_follows_the_base_url() -> None:
    assert ws_url("http://127.0.0.1:8000", "j 1") == "ws://127.0.0.1:8000/ws/generate/j%201"
    assert ws_url("https://api.example.com/llmts", "j1") == "wss://api.example.com/llmts/ws/generate/j1"
