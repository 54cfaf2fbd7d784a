"""Generate docs/schemas/ (the published JSON Schemas of every event) and check them.

    python scripts/event_schemas.py            # write the current version of every schema
    python scripts/event_schemas.py --check    # exit 1 when a file is out of date (make lint, unit test)
    python scripts/event_schemas.py --compat   # exit 1 on a breaking change to any published schema file

``--compat`` compares what the code defines now with every version of the same file ever committed (``git log``
of ``docs/schemas``): a published ``<type>/v<N>.json`` may only change compatibly
(``llmts_common.contracts.compat``); a breaking change needs the message's ``VERSION`` bumped, which writes a new
file and leaves the old one published. A published file may not be deleted either.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from llmts_common.contracts.compat import breaking_changes
from llmts_common.contracts.schemas import current_files

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "schemas"
REL = "docs/schemas"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def published_versions() -> dict[str, list[tuple[str, str]]]:
    """Relative path -> [(commit, text)] of every committed version of every schema file (newest first)."""
    out: dict[str, list[tuple[str, str]]] = {}
    seen: set[tuple[str, str]] = set()  # (path, blob): identical versions are compared once
    for commit in _git("log", "--format=%H", "--", REL).split():
        for line in _git("ls-tree", "-r", commit, "--", f"{REL}/").splitlines():
            meta, path = line.split("\t", 1)
            blob = meta.split()[2]
            rel = path[len(REL) + 1 :]
            if (rel, blob) in seen or not rel.endswith(".json"):
                continue
            seen.add((rel, blob))
            out.setdefault(rel, []).append((commit[:10], _git("cat-file", "blob", blob)))
    return out


def compat_problems(current: dict[str, str], published: dict[str, list[tuple[str, str]]]) -> list[str]:
    problems: list[str] = []
    for rel, versions in sorted(published.items()):
        if rel == "index.json":
            continue
        text = current.get(rel)
        if text is None:  # an older version (or a retired type): its file stays as published
            if not (TARGET / rel).exists():
                problems.append(f"{rel}: a published schema was deleted")
                continue
            text = (TARGET / rel).read_text()
        for commit, old in versions:
            for change in breaking_changes(json.loads(old), json.loads(text)):
                problems.append(f"{rel} (vs {commit}): {change}")
    return problems


def main(argv: list[str]) -> int:
    files = current_files()
    if "--check" in argv:
        stale = [
            rel
            for rel, text in files.items()
            if not (TARGET / rel).exists() or (TARGET / rel).read_text() != text
        ]
        if stale:
            print(f"schemas: out of date: {', '.join(sorted(stale))}; run `make schemas`")
            return 1
        print(f"schemas: {len(files)} files current")
        return 0
    if "--compat" in argv:
        problems = compat_problems(files, published_versions())
        for p in problems:
            print(f"schemas: breaking change: {p}")
        if problems:
            print("schemas: bump the message's VERSION (a new file) instead of changing a published one")
            return 1
        print("schemas: no breaking change to a published schema")
        return 0
    for rel, text in files.items():
        path = TARGET / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    print(f"schemas: wrote {len(files)} files under {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
