"""The amazon plugin's argument schema: generate it from the plugin's HCL2 spec, check templates.

``python -m tests.build.plugin_schema --amazon DIR --packer DIR --sdk DIR`` reads the generated
``*.hcl2spec.go`` files of the plugin at the version packer/versions.pkr.hcl pins (git checkouts
or mirrors; files are read with ``git show <tag>:<path>``) and writes the argument names, types
and nested blocks (facts only) to pipeline/data/packer/. ``check_file`` is what the tests run.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "pipeline" / "data" / "packer"

# --- Generating the schema from the Go sources ---------------------------------------------

_PACKAGE = re.compile(r"^package (\w+)$", re.MULTILINE)
_SPEC_FUNC = re.compile(
    r"func \(\*(Flat\w+)\) HCL2Spec\(\) map\[string\]hcldec\.Spec \{\s*"
    r"s := map\[string\]hcldec\.Spec\{(.*?)\n\t\}",
    re.DOTALL,
)
_ATTR = re.compile(
    r'^\s*"([\w-]+)":\s*&hcldec\.AttrSpec\{Name: "[\w-]+", Type: (.+?), Required: \w+\},?$'
)
_BLOCK_ATTRS = re.compile(
    r'^\s*"([\w-]+)":\s*&hcldec\.BlockAttrsSpec\{TypeName: "[\w-]+", ElementType: (.+?), '
    r"Required: \w+\},?$"
)
_BLOCK = re.compile(
    r'^\s*"([\w-]+)":\s*&hcldec\.(BlockSpec|BlockListSpec)\{TypeName: "[\w-]+", '
    r"Nested: hcldec\.ObjectSpec\(\(\*(?:(\w+)\.)?(Flat\w+)\)\(nil\)\.HCL2Spec\(\)\)\},?$"
)
_HCL_TAG = re.compile(r'^\s*\w+\s+(\S+)\s+`hcl:"([\w-]+),optional"`', re.MULTILINE)
_GO_TYPES = {"string": "string", "[]string": "list(string)", "*bool": "bool", "bool": "bool"}

AMAZON_FILES = ("builder/ebs/builder.hcl2spec.go", "builder/ebs/fast_launch_setup.hcl2spec.go")
AMAZON_COMMON = "common"
SDK_FILES = ("template/config/custom_types.hcl2spec.go",)
MANIFEST_FILE = "post-processor/manifest/post-processor.hcl2spec.go"
POST_PROCESSOR_BLOCK = "hcl2template/types.build.post-processor.go"


def cty_type(expr: str) -> str:
    """``cty.List(cty.String)`` -> ``list(string)``; ValueError for anything else."""
    expr = expr.strip()
    simple = {"cty.String": "string", "cty.Number": "number", "cty.Bool": "bool"}
    if expr in simple:
        return simple[expr]
    match = re.fullmatch(r"cty\.(List|Set|Map)\((.+)\)", expr)
    if match:
        return f"{match.group(1).lower()}({cty_type(match.group(2))})"
    raise ValueError(f"unsupported cty type {expr!r}")


Specs = dict[tuple[str, str], dict[str, Any]]


def parse_specs(go_source: str) -> Specs:
    """Every ``HCL2Spec()`` of one generated Go file: (package, FlatType) -> raw entries."""
    package = _PACKAGE.search(go_source)
    if not package:
        raise ValueError("no package clause")
    specs: Specs = {}
    for name, body in _SPEC_FUNC.findall(go_source):
        entries: dict[str, Any] = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            if m := _ATTR.match(line):
                entries[m.group(1)] = {"type": cty_type(m.group(2))}
            elif m := _BLOCK_ATTRS.match(line):
                entries[m.group(1)] = {"type": f"map({cty_type(m.group(2))})"}
            elif m := _BLOCK.match(line):
                nesting = "single" if m.group(2) == "BlockSpec" else "list"
                ref = (m.group(3) or package.group(1), m.group(4))
                entries[m.group(1)] = {"nesting": nesting, "ref": ref}
            else:
                raise ValueError(f"{name}: unrecognised spec line {line.strip()!r}")
        specs[(package.group(1), name)] = entries
    return specs


def resolve(specs: Specs, key: tuple[str, str]) -> dict[str, Any]:
    """The schema of one Flat type: attributes (name -> type) and nested blocks, recursively."""
    if key not in specs:
        raise KeyError(f"no HCL2Spec for {key[0]}.{key[1]} in the files read")
    attributes: dict[str, str] = {}
    blocks: dict[str, Any] = {}
    for name, entry in sorted(specs[key].items()):
        if "type" in entry:
            attributes[name] = entry["type"]
        else:
            blocks[name] = {"nesting": entry["nesting"], **resolve(specs, entry["ref"])}
    return {"attributes": attributes, "blocks": blocks}


def post_processor_block_args(go_source: str) -> dict[str, str]:
    """The arguments Packer core accepts in every ``post-processor`` block (name, only, ...)."""
    return {name: _GO_TYPES[go] for go, name in _HCL_TAG.findall(go_source) if go in _GO_TYPES}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(_git_dir(repo)), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _git_dir(repo: Path) -> Path:
    return repo / ".git" if (repo / ".git").exists() else repo


def _show(repo: Path, tag: str, path: str) -> str:
    return _git(repo, "show", f"{tag}:{path}")


def _origin(repo: Path, tag: str, name: str) -> dict[str, str]:
    commit = _git(repo, "rev-parse", f"{tag}^{{commit}}").strip()
    return {"repository": f"https://github.com/hashicorp/{name}", "tag": tag, "commit": commit}


def generate(
    amazon: Path, version: str, packer: Path, packer_tag: str, sdk: Path
) -> dict[str, Any]:
    """The schema document for amazon plugin ``version`` (facts read from the three checkouts)."""
    tag = f"v{version}"
    go_mod = _show(amazon, tag, "go.mod")
    sdk_match = re.search(r"github\.com/hashicorp/packer-plugin-sdk (v[\w.-]+)", go_mod)
    if not sdk_match:
        raise ValueError("the plugin's go.mod names no packer-plugin-sdk version")
    sdk_tag = sdk_match.group(1)
    common = [
        p
        for p in _git(amazon, "ls-tree", "--name-only", f"{tag}:{AMAZON_COMMON}").split()
        if p.endswith(".hcl2spec.go")
    ]
    specs: Specs = {}
    for path in [*AMAZON_FILES, *(f"{AMAZON_COMMON}/{p}" for p in common)]:
        specs.update(parse_specs(_show(amazon, tag, path)))
    for path in SDK_FILES:
        specs.update(parse_specs(_show(sdk, sdk_tag, path)))
    manifest_specs = parse_specs(_show(packer, packer_tag, MANIFEST_FILE))
    manifest = resolve(manifest_specs, ("manifest", "FlatConfig"))
    core = post_processor_block_args(_show(packer, packer_tag, POST_PROCESSOR_BLOCK))
    return {
        "about": (
            "Argument names, types and nested blocks of the amazon-ebs builder and the manifest "
            "post-processor, read from their generated HCL2 specs by tests/build/plugin_schema.py. "
            "Regenerate when packer/versions.pkr.hcl moves (packer/README.md)."
        ),
        "plugin": {"source": "github.com/hashicorp/amazon", "version": version},
        "origins": {
            "amazon": {**_origin(amazon, tag, "packer-plugin-amazon"), "files": [
                *AMAZON_FILES, f"{AMAZON_COMMON}/*.hcl2spec.go"
            ]},
            "sdk": {**_origin(sdk, sdk_tag, "packer-plugin-sdk"), "files": list(SDK_FILES)},
            "packer": {
                **_origin(packer, packer_tag, "packer"),
                "files": [MANIFEST_FILE, POST_PROCESSOR_BLOCK],
            },
        },
        "sources": {"amazon-ebs": resolve(specs, ("ebs", "FlatConfig"))},
        "post_processors": {"manifest": manifest},
        "post_processor_block": core,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amazon", type=Path, required=True, help="packer-plugin-amazon git dir")
    parser.add_argument("--packer", type=Path, required=True, help="packer git dir")
    parser.add_argument("--sdk", type=Path, required=True, help="packer-plugin-sdk git dir")
    parser.add_argument("--version", help="plugin version (default: the pinned one)")
    parser.add_argument("--packer-tag", help="Packer tag (default: required_version's minimum)")
    args = parser.parse_args(argv)
    version = args.version or pinned_plugin_version()
    packer_tag = args.packer_tag or f"v{required_packer_version()}"
    doc = generate(args.amazon, version, args.packer, packer_tag, args.sdk)
    out = SCHEMA_DIR / f"amazon-{version}.json"
    out.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(REPO)}", file=sys.stderr)
    return 0


# --- Checking the templates against it ---------------------------------------------------------

_OPTS = SerializationOptions(strip_string_quotes=True, explicit_blocks=True, with_comments=False)
_VAR_REF = re.compile(r"^\$\{var\.([A-Za-z_][\w-]*)\}$")
_EXACT = re.compile(r"^=?\s*v?(\d+\.\d+\.\d+)$")
BLOCK = "__is_block__"


def _versions() -> dict[str, Any]:
    with (REPO / "packer" / "versions.pkr.hcl").open(encoding="utf-8") as handle:
        (block,) = hcl2.load(handle, serialization_options=_OPTS)["packer"]
    return dict(block)


def pinned_plugin_version() -> str:
    """The exact amazon plugin version packer/versions.pkr.hcl pins; ValueError if a range."""
    (plugins,) = _versions()["required_plugins"]
    constraint = str(plugins["amazon"]["version"]).strip()
    match = _EXACT.match(constraint)
    if not match:
        raise ValueError(f"packer/versions.pkr.hcl: amazon version {constraint!r} is not exact")
    return match.group(1)


def required_packer_version() -> str:
    """The minimum of ``required_version`` (``>= 1.10.0`` -> ``1.10.0``)."""
    match = re.search(r"(\d+\.\d+\.\d+)", str(_versions()["required_version"]))
    if not match:
        raise ValueError("packer/versions.pkr.hcl: required_version names no version")
    return match.group(1)


def load_schema(version: str | None = None) -> dict[str, Any]:
    path = SCHEMA_DIR / f"amazon-{version or pinned_plugin_version()}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _value_type(value: Any) -> str | None:
    """The HCL type of a literal, or None for an expression (not checked)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return None if "${" in value else "string"
    if isinstance(value, list):
        inner = {_value_type(v) for v in value}
        return f"list({inner.pop()})" if len(inner) == 1 and None not in inner else None
    if isinstance(value, dict) and all(_value_type(v) == "string" for v in value.values()):
        return "map(string)"
    return None


def _compatible(want: str, got: str) -> bool:
    if want == got:
        return True
    if want.startswith("set(") and got.startswith("list("):
        return want[4:] == got[5:]
    return got == "string" and want == "number"  # HCL converts "3000" to a number


def _check_body(
    body: dict[str, Any], schema: dict[str, Any], where: str, types: dict[str, str]
) -> Iterator[str]:
    attributes: dict[str, str] = schema["attributes"]
    blocks: dict[str, Any] = schema["blocks"]
    for name, value in body.items():
        if name == BLOCK:
            continue
        if name == "dynamic":
            for dynamic in value:
                for label, spec in dynamic.items():
                    if label == BLOCK:
                        continue
                    if label not in blocks:
                        yield f"{where}: unknown block {label!r} (dynamic)"
                        continue
                    for content in spec.get("content", []):
                        yield from _check_body(content, blocks[label], f"{where}.{label}", types)
            continue
        is_block = (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) and v.get(BLOCK) for v in value)
        )
        if is_block and name in blocks:
            if blocks[name]["nesting"] == "single" and len(value) > 1:
                yield f"{where}: block {name!r} may appear once, found {len(value)}"
            for item in value:
                yield from _check_body(item, blocks[name], f"{where}.{name}", types)
        elif is_block and attributes.get(name, "").startswith("map("):
            continue  # a map argument written in block syntax
        elif is_block:
            yield f"{where}: unknown block {name!r}"
        elif name not in attributes:
            hint = " (it is a block: write it without '=')" if name in blocks else ""
            yield f"{where}: unknown argument {name!r}{hint}"
        else:
            want = attributes[name]
            ref = _VAR_REF.match(value) if isinstance(value, str) else None
            got = types.get(ref.group(1)) if ref else _value_type(value)
            if got is not None and not _compatible(want, got):
                yield f"{where}: argument {name!r} is {want}, got {got}"


def _variable_types(paths: list[Path]) -> dict[str, str]:
    types: dict[str, str] = {}
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            doc = hcl2.load(handle, serialization_options=_OPTS)
        for block in doc.get("variable", []):
            for name, body in block.items():
                if name != BLOCK and "type" in body:
                    types[name] = re.sub(r"\$\{(.*)\}", r"\1", str(body["type"])).replace(" ", "")
    return types


def check_file(path: Path, schema: dict[str, Any], variables: list[Path]) -> list[str]:
    """Every argument or block of ``path``'s sources and post-processors that the schema lacks.

    Each problem names the file and the block path: ``eks-cis.pkr.hcl: source.amazon-ebs.x:
    unknown argument 'foo'``. Variables' declared types are checked where passed as ``var.x``.
    """
    with path.open(encoding="utf-8") as handle:
        doc = hcl2.load(handle, serialization_options=_OPTS)
    types = _variable_types(variables)
    problems: list[str] = []
    for block in doc.get("source", []):
        for kind, named in block.items():
            if kind == BLOCK:
                continue
            for name, body in named.items():
                where = f"{path.name}: source.{kind}.{name}"
                if name == BLOCK:
                    continue
                if kind not in schema["sources"]:
                    problems.append(f"{where}: no schema for source type {kind!r}")
                    continue
                problems += _check_body(body, schema["sources"][kind], where, types)
    for build in doc.get("build", []):
        for item in build.get("post-processor", []):
            for kind, body in item.items():
                if kind == BLOCK:
                    continue
                where = f"{path.name}: build.post-processor.{kind}"
                if kind not in schema["post_processors"]:
                    problems.append(f"{where}: no schema for post-processor {kind!r}")
                    continue
                pp = schema["post_processors"][kind]
                merged = {
                    "attributes": {**schema["post_processor_block"], **pp["attributes"]},
                    "blocks": pp["blocks"],
                }
                problems += _check_body(body, merged, where, types)
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
