"""Check the monitoring objects of a rendered overlay, offline; part of ``make k8s-validate``.

Usage: ``python scripts/monitoring_check.py RENDERED.yaml OUT_DIR``. Reads the ``PrometheusRule`` objects and the
Grafana dashboards (ConfigMaps labelled ``grafana_dashboard``) and:
- checks each dashboard's structure (title, uid, panels with unique ids, type, title, grid position, Prometheus
  targets with a refId and an expression);
- checks that every ``llmts_*`` metric a rule or a panel queries is defined by the code (libs/, services/), so a
  renamed or never-exported metric fails the build instead of an alert that can never fire;
- writes every rule group, and every panel expression as a recording rule, into ``OUT_DIR/*.rules.yaml`` for
  ``promtool check rules`` (which parses the PromQL and the alert templates).
Exits non-zero with one line per problem.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
_METRIC = re.compile(r"\bllmts_[a-z0-9_]+")
_SUFFIXES = ("_bucket", "_sum", "_count")


def defined_metrics(roots: Iterable[Path]) -> set[str]:
    """Metric names given as string literals to prometheus_client in the code."""
    names: set[str] = set()
    literal = re.compile(r"""(?:Counter|Gauge|Histogram|Summary)\(\s*["'](llmts_[a-z0-9_]+)["']""")
    for root in roots:
        for path in root.rglob("*.py"):
            if "tests" in path.parts:
                continue
            names.update(literal.findall(path.read_text(encoding="utf-8")))
    return names


def used_metrics(expr: str) -> set[str]:
    out = set()
    for name in _METRIC.findall(expr):
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        out.add(name)
    return out


def dashboard_problems(name: str, board: Any) -> Iterator[str]:
    if not isinstance(board, dict):
        yield f"{name}: not a JSON object"
        return
    for key in ("title", "uid"):
        if not isinstance(board.get(key), str) or not board[key]:
            yield f"{name}: no {key}"
    panels = board.get("panels")
    if not isinstance(panels, list) or not panels:
        yield f"{name}: no panels"
        return
    seen: set[int] = set()
    for panel in panels:
        pid = panel.get("id")
        where = f"{name} panel {pid}"
        if not isinstance(pid, int) or pid in seen:
            yield f"{where}: missing or duplicate id"
        seen.add(pid)
        if not panel.get("type") or not panel.get("title"):
            yield f"{where}: no type or title"
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            yield f"{where}: gridPos needs integer h, w, x, y"
        targets = panel.get("targets")
        if not isinstance(targets, list) or not targets:
            yield f"{where}: no targets"
            continue
        for target in targets:
            if (
                not target.get("refId")
                or not isinstance(target.get("expr"), str)
                or not target["expr"].strip()
            ):
                yield f"{where}: a target without refId or expr"


def panel_rules(name: str, board: dict[str, Any]) -> dict[str, Any]:
    """Every panel expression as a recording rule, so promtool parses it."""
    rules = [
        {"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": target["expr"]}
        for panel in board["panels"]
        for target in panel["targets"]
    ]
    return {"groups": [{"name": f"dashboard {name}", "rules": rules}]}


def check(docs: list[dict[str, Any]], out_dir: Path, known: set[str]) -> list[str]:
    problems: list[str] = []
    exprs: list[tuple[str, str]] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        name = doc.get("metadata", {}).get("name", "?")
        if doc.get("kind") == "PrometheusRule":
            spec = doc.get("spec") or {}
            (out_dir / f"rule-{name}.rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
            for group in spec.get("groups", []):
                exprs += [
                    (f"rule {rule.get('alert') or rule.get('record')}", rule["expr"])
                    for rule in group["rules"]
                ]
        labels = doc.get("metadata", {}).get("labels") or {}
        if doc.get("kind") == "ConfigMap" and "grafana_dashboard" in labels:
            for key, text in (doc.get("data") or {}).items():
                try:
                    board = json.loads(text)
                except json.JSONDecodeError as exc:
                    problems.append(f"{name}/{key}: invalid JSON ({exc})")
                    continue
                found = list(dashboard_problems(f"{name}/{key}", board))
                problems += found
                if not found:
                    (out_dir / f"dashboard-{name}-{key}.rules.yaml").write_text(
                        yaml.safe_dump(panel_rules(key, board), sort_keys=False)
                    )
                    exprs += [
                        (f"{key} panel {p['id']}", t["expr"]) for p in board["panels"] for t in p["targets"]
                    ]
    for where, expr in exprs:
        problems += [
            f"{where}: metric {m} is not defined in the code" for m in sorted(used_metrics(expr) - known)
        ]
    if not any(doc.get("kind") == "PrometheusRule" for doc in docs):
        problems.append("no PrometheusRule in the rendered overlay")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(__doc__ or "")
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d]
    problems = check(docs, Path(argv[1]), defined_metrics([ROOT / "libs", ROOT / "services"]))
    for problem in problems:
        sys.stdout.write(f"monitoring-check: {problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
