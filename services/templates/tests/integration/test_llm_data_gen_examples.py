"""Every example config of llm-data-gen 1.1.8 imports, validates and previews.

The configs are fetched at test time with ``npm pack @1337plus/llmdatagen@1.1.8`` (the MIT release; the project's
later licence forbids copying them into this repository — see ``compat/llm-data-gen/MANIFEST.md``). The tarball is
cached under ``~/.cache/llmts/npm/<version>/`` (``LLMTS_CACHE_DIR`` overrides the root) and checked against the
integrity recorded in the MANIFEST. If npm cannot fetch it the test FAILS: it never skips silently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

PACKAGE = "@1337plus/llmdatagen"
VERSION = "1.1.8"
TARBALL = "1337plus-llmdatagen-1.1.8.tgz"
INTEGRITY = "sha512-aXizKtzfVkdph2Gl5SMcqKXNWrEx3NjERAxOo1o4svFCXZGh7iXcMd0+xyVLak2CwzgkMgMDlWnUVXptZLTsCw=="
EXPECTED = {
    "articles.json",
    "blog-posts.json",
    "csv-data.json",
    "default.json",
    "emails.json",
    "news-digest-markdown.json",
    "news-digest.json",
    "newsgen.json",
    "products.json",
    "quiz-test.json",
    "quiz.json",
    "tabletop.json",
}


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _tarball() -> Path:
    root = Path(os.environ.get("LLMTS_CACHE_DIR") or Path.home() / ".cache" / "llmts")
    cache = root / "npm" / VERSION
    cached = cache / TARBALL
    if cached.is_file() and _integrity(cached) == INTEGRITY:
        return cached
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: cannot fetch the llm-data-gen example configs (npm pack)")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run(
                [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent"],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm pack {PACKAGE}@{VERSION} timed out: is the npm registry reachable?")
        fetched = Path(tmp) / TARBALL
        if proc.returncode != 0 or not fetched.is_file():
            pytest.fail(
                f"npm pack {PACKAGE}@{VERSION} failed (exit {proc.returncode}); the registry must be reachable "
                f"to fetch the llm-data-gen example configs.\nstderr: {proc.stderr.strip()[-2000:]}"
            )
        if _integrity(fetched) != INTEGRITY:
            pytest.fail(f"{TARBALL} does not match the integrity recorded in the MANIFEST")
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fetched, cached)
    return cached


def _example_configs() -> dict[str, Any]:
    configs: dict[str, Any] = {}
    with tarfile.open(_tarball(), "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if member.isfile() and name.startswith("package/configs/examples/") and name.endswith(".json"):
                handle = tar.extractfile(member)
                assert handle is not None
                configs[name.rsplit("/", 1)[1]] = json.loads(handle.read().decode("utf-8"))
    return configs


async def test_every_llm_data_gen_example_imports_validates_and_previews(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    configs = _example_configs()
    assert set(configs) == EXPECTED
    for file_name, config in sorted(configs.items()):
        r = await client.post("/templates/import/llm-data-gen", json=config, headers=alice)
        assert r.status_code == 201, (file_name, r.text)
        template = r.json()["template"]
        fmt = config.get("output", {}).get("format", "json")
        assert template["output"]["format"] == fmt, file_name
        assert template["tasks"] == config["generation"]["tasks"], file_name
        assert template["model"]["id"] == config["api"]["model"], file_name
        document = {
            k: v
            for k, v in template.items()
            if k not in ("id", "owner_id", "version", "created_at", "updated_at")
        }
        report = (await client.post("/templates/validate", json=document, headers=alice)).json()
        assert report["valid"], (file_name, report["errors"])
        total = sum(int(t.get("count", 1)) for t in config["generation"]["tasks"])
        for index in {0, total - 1}:  # the first item of the first task and the last item of the last task
            r = await client.post(
                "/templates/preview",
                json={"template_id": template["id"], "index": index, "count": total},
                headers=alice,
            )
            assert r.status_code == 200, (file_name, index, r.text)
            out = r.json()
            assert out["rendered"]["user"].strip(), file_name
            assert out["request_body"]["model"] == config["api"]["model"]
            if fmt == "json":
                assert out["rendered"]["user"].startswith("Сгенерируй JSON объект")
                schema = out["request_body"]["response_format"]["json_schema"]["schema"]
                assert "x-llm-generate" not in json.dumps(schema)
            else:
                assert "response_format" not in out["request_body"]
