"""Turn CustomResourceDefinitions into the JSON schemas kubeconform reads, strict like the API server.

Usage: ``python scripts/crd_schemas.py OUT_DIR CRD.yaml...`` writes ``OUT_DIR/<group>/<kind>_<version>.json`` (kind
in lower case) for every version of every CRD in the files; kubeconform finds them with
``-schema-location 'OUT_DIR/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'``.

The openAPIV3Schema becomes a JSON schema: an object that lists its properties accepts no other field (unless it
says ``x-kubernetes-preserve-unknown-fields`` or has ``additionalProperties``), as the API server prunes or, with
``kubectl --validate=strict``, rejects unknown fields; ``x-kubernetes-int-or-string`` accepts both; ``nullable``
accepts null.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMAS = ("items", "additionalProperties", "not")


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with the Kubernetes extensions turned into JSON-schema rules."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [strict(sub) for sub in value]
        elif key in _SCHEMAS and isinstance(value, dict):
            out[key] = strict(value)
        else:
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        out["additionalProperties"] = False
    return out


def crd_schemas(crd: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(relative path, JSON schema)`` of every version of one CRD."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    for version in spec["versions"]:
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        yield f"{group}/{kind.lower()}_{version['name']}.json", schema


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write(__doc__ or "")
        return 2
    out_dir = Path(argv[0])
    count = 0
    for path in argv[1:]:
        with open(path, encoding="utf-8") as handle:
            for doc in yaml.safe_load_all(handle):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                for rel, schema in crd_schemas(doc):
                    target = out_dir / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(json.dumps(schema, indent=1), encoding="utf-8")
                    count += 1
    sys.stdout.write(f"crd-schemas: {count} schemas in {out_dir}\n")
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
