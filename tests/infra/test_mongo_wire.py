"""The local MongoDB-wire server (``.ci/mongo/MongoMain.java``, what ``scripts/infra.sh`` runs): its group commit
shares commits between concurrent writers, and every acknowledged write survives ``kill -9``.

Compiles the current ``MongoMain.java`` against the jars ``scripts/infra.sh up`` fetched (skipped when they or a
JDK are missing) and runs it on a free port with a data file of its own: the shared server is not touched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymongo
import pytest

from tests.support.net import free_port

pytestmark = pytest.mark.connected

ROOT = Path(__file__).resolve().parents[2]
VERSION = os.environ.get("MONGO_JAVA_SERVER_VERSION", "1.47.0")
LIB = (
    Path(os.environ.get("LLMTS_CACHE_DIR", Path.home() / ".cache" / "llmts"))
    / f"mongo-java-server-{VERSION}"
    / "lib"
)
WRITERS, WRITES = 16, 40


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("javac") is None or not any(LIB.glob("*.jar")):
        pytest.skip(f"no JDK or no mongo-java-server jars in {LIB} (scripts/infra.sh up fetches them)")
    out = tmp_path_factory.mktemp("mongo-classes")
    subprocess.run(
        [
            "javac",
            "-nowarn",
            "--release",
            "17",
            "-cp",
            f"{LIB}/*",
            "-d",
            str(out),
            ROOT / ".ci/mongo/MongoMain.java",
        ],
        check=True,
        timeout=120,
    )
    return out


class Server:
    def __init__(self, classes: Path, data: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                "java",
                "-Xmx256m",
                "-cp",
                f"{classes}:{LIB}/*",
                "MongoMain",
                str(data),
                str(self.port),
                "127.0.0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # slf4j-simple's log; the "listening" line is on stdout
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening" in line, line

    def client(self) -> pymongo.MongoClient[dict[str, object]]:
        return pymongo.MongoClient(
            "127.0.0.1", self.port, directConnection=True, serverSelectionTimeoutMS=10_000
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def started(classes: Path, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    data = tmp_path / "test.mv.db"
    server = Server(classes, data)
    try:
        yield server, data
    finally:
        if server.proc.poll() is None:
            server.kill()


def write_many(server: Server, writer: int) -> int:
    with server.client() as client:
        col = client["llmts_test_wire"]["docs"]
        for i in range(WRITES):
            col.insert_one({"_id": f"{writer}-{i}", "writer": writer})
    return WRITES


def test_concurrent_writes_share_commits_and_survive_kill_9(
    classes: Path, started: tuple[Server, Path]
) -> None:
    server, data = started
    with ThreadPoolExecutor(WRITERS) as pool:
        acknowledged = sum(pool.map(lambda w: write_many(server, w), range(WRITERS)))
    with server.client() as client:
        stats = client.admin.command("llmtsCommitStats")
    assert stats["commandsCommitted"] >= acknowledged
    assert 0 < stats["commits"] < stats["commandsCommitted"]  # some commands were stored by another's commit

    server.kill()  # no shutdown hook, no final commit: only what each command's commit stored
    again = Server(classes, data)
    try:
        with again.client() as client:
            assert client["llmts_test_wire"]["docs"].count_documents({}) == acknowledged
    finally:
        again.kill()


def test_reads_do_not_commit(classes: Path, started: tuple[Server, Path]) -> None:
    server, _data = started
    with server.client() as client:
        col = client["llmts_test_wire"]["docs"]
        col.insert_one({"_id": 1})
        before = client.admin.command("llmtsCommitStats")["commits"]
        deadline = time.monotonic() + 5
        for _ in range(20):
            assert col.find_one({"_id": 1}) == {"_id": 1}
        assert time.monotonic() < deadline
        assert client.admin.command("llmtsCommitStats")["commits"] == before
