"""Helpers for reading the Packer templates in tests: python-hcl2 parsing and a tiny evaluator.

The evaluator understands just what the templates' tag/manifest locals use — ``${var.x}``,
``${local.x}`` and ``${local.map[var.x]}`` inside strings — so tests can render the tags a
template would write for given variables and compare them with ``pipeline.packer``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

PACKER_DIR = Path(__file__).resolve().parents[2] / "packer"
PRODUCTION_FILES = sorted(PACKER_DIR.glob("*.pkr.hcl"))
LOCAL_TEMPLATE = PACKER_DIR / "local" / "eks-cis-local.pkr.hcl"
VAR_FILES = sorted((PACKER_DIR / "vars").glob("*.pkrvars.hcl"))

_OPTS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
_INTERP = re.compile(r"\$\{([^{}]+)\}")
_REF = re.compile(
    r"^(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[(var|local)\.([A-Za-z_][\w-]*)\])?$"
)


def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return dict(hcl2.load(handle, serialization_options=_OPTS))


def merged(paths: list[Path]) -> dict[str, list[Any]]:
    """Top-level blocks of several files, as Packer sees a directory."""
    out: dict[str, list[Any]] = {}
    for path in paths:
        for key, value in load(path).items():
            out.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return out


def variables(doc: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get("variable", []) for name, body in block.items()}


def locals_of(doc: dict[str, list[Any]]) -> dict[str, Any]:
    return {k: v for block in doc.get("locals", []) for k, v in block.items()}


def source(doc: dict[str, list[Any]]) -> dict[str, Any]:
    """The body of the one amazon-ebs source."""
    (block,) = doc["source"]
    (body,) = block["amazon-ebs"].values()
    return dict(body)


def build(doc: dict[str, list[Any]]) -> dict[str, Any]:
    (block,) = doc["build"]
    return dict(block)


def provisioners(doc: dict[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (kind, body) for item in build(doc).get("provisioner", []) for kind, body in item.items()
    ]


def post_processors(doc: dict[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (kind, body) for item in build(doc).get("post-processor", []) for kind, body in item.items()
    ]


class Evaluator:
    """Render template values for given variables (defaults filled from the declarations)."""

    def __init__(self, doc: dict[str, list[Any]], values: dict[str, Any]) -> None:
        declared = variables(doc)
        self.vars = {k: v["default"] for k, v in declared.items() if "default" in v}
        self.vars.update(values)
        self.locals = locals_of(doc)

    def ref(self, expr: str) -> Any:
        match = _REF.match(expr.strip())
        if not match:
            raise ValueError(f"unsupported expression: {expr}")
        kind, name, idx_kind, idx_name = match.groups()
        value = self.vars[name] if kind == "var" else self.render(self.locals[name])
        if idx_kind:
            key = self.vars[idx_name] if idx_kind == "var" else self.render(self.locals[idx_name])
            value = value[key]
        return value

    def render(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v) for v in value]
        if not isinstance(value, str):
            return value
        whole = _INTERP.fullmatch(value)
        if whole:
            result = self.ref(whole.group(1))
            numeric = isinstance(result, (int, float)) and not isinstance(result, bool)
            return str(result) if numeric else result
        return _INTERP.sub(lambda m: str(self.ref(m.group(1))), value)
