"""Regenerate pytest_aksai/sim/_apiserver/knownfields.json from the installed `kubernetes` client.

The sim's unknown-field detection (`fieldValidation` Strict/Warn/Ignore) needs, per built-in kind, the JSON
field names and their types. The official client's models carry them (generated from the upstream OpenAPI
document); this script extracts them once so that the sim loads no client code at start.

    python tools/gen_knownfields.py
"""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import kubernetes.client.models as models

OUT = Path(__file__).resolve().parents[1] / "pytest_aksai" / "sim" / "_apiserver" / "knownfields.json"
_REFERENCE = re.compile(r"[A-Z][A-Za-z0-9]+")


def _fields(cls: Any) -> dict[str, str]:
    return {cls.attribute_map[a]: t for a, t in cls.openapi_types.items() if a in cls.attribute_map}


def main() -> None:
    tops = [
        name
        for name in dir(models)
        if isinstance(getattr(models, name), type)
        and {"kind", "api_version", "metadata"} <= set(getattr(getattr(models, name), "openapi_types", {}))
        and not name.endswith("List")
    ]
    table: dict[str, dict[str, str]] = {}
    todo = list(tops)
    while todo:
        name = todo.pop()
        cls = getattr(models, name, None)
        if name in table or not isinstance(getattr(cls, "openapi_types", None), dict):
            continue
        table[name] = _fields(cls)
        todo.extend(ref for t in table[name].values() for ref in _REFERENCE.findall(t))
    document = {
        "_source": f"kubernetes Python client {version('kubernetes')} models (tools/gen_knownfields.py)",
        "models": dict(sorted(table.items())),
    }
    OUT.write_text(json.dumps(document, separators=(",", ":"), sort_keys=False) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(table)} models")


if __name__ == "__main__":
    main()
