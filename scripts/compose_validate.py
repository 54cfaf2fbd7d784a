"""Validate docker-compose.yml: the Compose Specification JSON schema (vendored by check-jsonschema), then the
semantics a schema cannot see: every depends_on target exists, healthy-conditions point at services with a
healthcheck, the six services are present with a Dockerfile that exists, env files exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SIX = ("gateway", "auth", "catalog", "templates", "generator", "exporter")


def semantic_errors(doc: dict[str, Any], root: Path) -> list[str]:
    errors: list[str] = []
    services: dict[str, Any] = doc.get("services", {})
    for name in SIX:
        if name not in services:
            errors.append(f"service {name} is missing")
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        items = deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)
        for dep, cond in items:
            if dep not in services:
                errors.append(f"{name}: depends_on unknown service {dep}")
                continue
            if (cond or {}).get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                errors.append(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")
        build = svc.get("build")
        if isinstance(build, dict):
            dockerfile = root / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            if not dockerfile.exists():
                errors.append(f"{name}: Dockerfile {dockerfile.relative_to(root)} does not exist")
        for env in svc.get("env_file", []) or []:
            path, required = (env, True) if isinstance(env, str) else (env["path"], env.get("required", True))
            if required and not (root / path).exists():
                errors.append(f"{name}: env_file {path} does not exist")
        if name in SIX and "healthcheck" not in svc:
            errors.append(f"{name}: no healthcheck")
    return errors


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docker-compose.yml").resolve()
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        check=False,
    )
    if result.returncode != 0:
        return result.returncode
    doc = yaml.safe_load(path.read_text())
    errors = semantic_errors(doc, path.parent)
    for e in errors:
        print(f"compose: {e}")
    if not errors:
        print(f"compose: {path.name} is valid ({len(doc['services'])} services)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
