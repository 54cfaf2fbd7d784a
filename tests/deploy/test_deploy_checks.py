"""The offline checks of `make k8s-validate`: CRD → strict JSON schema, and the monitoring objects' check."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


crd_schemas = _script("crd_schemas")
monitoring_check = _script("monitoring_check")


def _strimzi_schema(kind: str, version: str) -> dict[str, Any]:
    with open(ROOT / "deploy/k8s/schemas/strimzi-crds.yaml", encoding="utf-8") as handle:
        for crd in yaml.safe_load_all(handle):
            for rel, schema in crd_schemas.crd_schemas(crd):
                if rel == f"kafka.strimzi.io/{kind}_{version}.json":
                    return dict(schema)
    raise AssertionError(f"no schema for {kind} {version}")


def test_unknown_fields_are_errors_but_preserved_objects_stay_open() -> None:
    schema = _strimzi_schema("kafkatopic", "v1beta2")
    topic = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {"name": "t"},
        "spec": {"partitions": 6, "replicas": 3, "config": {"retention.ms": 1, "anything.goes": "x"}},
    }
    jsonschema.validate(topic, schema)
    topic["spec"]["partition"] = 6
    with pytest.raises(jsonschema.ValidationError, match="partition"):
        jsonschema.validate(topic, schema)


def test_kafka_user_acls_are_checked() -> None:
    schema = _strimzi_schema("kafkauser", "v1")
    user = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {"name": "llmts-gateway"},
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {
                "type": "simple",
                "acls": [
                    {"resource": {"type": "topic", "name": "generation.commands"}, "operations": ["Write"]}
                ],
            },
        },
    }
    jsonschema.validate(user, schema)
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Publish"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(user, schema)


def test_int_or_string_and_nullable() -> None:
    out = crd_schemas.strict(
        {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
            },
        }
    )
    for ok in ({"port": 8080}, {"port": "http"}, {"note": None}):
        jsonschema.validate(ok, out)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"port": 1.5}, out)


def _rule(expr: str) -> dict[str, Any]:
    return {
        "kind": "PrometheusRule",
        "metadata": {"name": "r"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": expr}]}]},
    }


def _dashboard(board: Any) -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "metadata": {"name": "d", "labels": {"grafana_dashboard": "1"}},
        "data": {"d.json": json.dumps(board)},
    }


GOOD_BOARD = {
    "title": "t",
    "uid": "u",
    "panels": [
        {
            "id": 1,
            "type": "timeseries",
            "title": "p",
            "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0},
            "targets": [{"refId": "A", "expr": "sum(rate(llmts_http_request_duration_seconds_bucket[5m]))"}],
        }
    ],
}


def test_good_objects_pass_and_are_written_for_promtool(tmp_path: Path) -> None:
    known = {"llmts_http_requests_total", "llmts_http_request_duration_seconds"}
    docs = [_rule("rate(llmts_http_requests_total[5m]) > 1"), _dashboard(GOOD_BOARD)]
    assert monitoring_check.check(docs, tmp_path, known) == []
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["dashboard-d-d.json.rules.yaml", "rule-r.rules.yaml"]
    recorded = yaml.safe_load((tmp_path / written[0]).read_text())
    assert recorded["groups"][0]["rules"][0]["record"] == "dashboard:panel_1_A"


def test_a_metric_the_code_does_not_export_is_reported(tmp_path: Path) -> None:
    problems = monitoring_check.check(
        [_rule("llmts_generator_job_duration_seconds_count > 0")], tmp_path, set()
    )
    assert problems == ["rule A: metric llmts_generator_job_duration_seconds is not defined in the code"]


def test_broken_dashboards_are_reported(tmp_path: Path) -> None:
    board = json.loads(json.dumps(GOOD_BOARD))
    board["panels"].append({**board["panels"][0], "targets": []})
    docs = [_rule("up == 0"), _dashboard(board), {**_dashboard({}), "data": {"x.json": "{not json"}}]
    problems = monitoring_check.check(docs, tmp_path, {"llmts_http_request_duration_seconds"})
    assert any("missing or duplicate id" in p for p in problems)
    assert any("no targets" in p for p in problems)
    assert any("invalid JSON" in p for p in problems)


def test_the_metrics_of_the_code_are_found() -> None:
    known = monitoring_check.defined_metrics([ROOT / "libs", ROOT / "services"])
    assert {"llmts_http_requests_total", "llmts_generator_provider_errors_total"} <= known
