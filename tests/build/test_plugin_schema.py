"""The production template against the amazon plugin's argument schema at the pinned version.

The schema (pipeline/data/packer/amazon-<version>.json) is generated from the plugin's published
HCL2 spec by tests/build/plugin_schema.py; cases/plugin_schema/ holds templates that must fail
(first line: ``# expect: <problem>``) and one that must pass.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.build import plugin_schema
from tests.build._packer_hcl import PRODUCTION_FILES

CASES = sorted((Path(__file__).parent / "cases" / "plugin_schema").glob("*.pkr.hcl"))
SCHEMA = plugin_schema.load_schema()


def test_the_schema_is_the_pinned_version() -> None:
    pinned = plugin_schema.pinned_plugin_version()
    assert SCHEMA["plugin"] == {"source": "github.com/hashicorp/amazon", "version": pinned}
    amazon = SCHEMA["origins"]["amazon"]
    assert amazon["tag"] == f"v{pinned}"
    assert re.fullmatch(r"[0-9a-f]{40}", amazon["commit"])
    assert SCHEMA["origins"]["packer"]["tag"] == f"v{plugin_schema.required_packer_version()}"


@pytest.mark.parametrize("path", PRODUCTION_FILES, ids=lambda p: p.name)
def test_production_template_uses_only_known_arguments(path: Path) -> None:
    problems = plugin_schema.check_file(path, SCHEMA, PRODUCTION_FILES)
    assert problems == [], "\n".join(problems)


def test_the_schema_knows_what_the_template_relies_on() -> None:
    ebs = SCHEMA["sources"]["amazon-ebs"]
    for name in ("encrypt_boot", "kms_key_id", "imds_support", "deprecate_at", "ssh_interface"):
        assert name in ebs["attributes"], name
    assert ebs["blocks"]["launch_block_device_mappings"]["nesting"] == "list"
    assert ebs["blocks"]["metadata_options"]["nesting"] == "single"
    device = ebs["blocks"]["launch_block_device_mappings"]["attributes"]
    assert device["kms_key_id"] == "string" and device["volume_size"] == "number"
    assert SCHEMA["post_processors"]["manifest"]["attributes"]["custom_data"] == "map(string)"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    expect = first.removeprefix("# expect: ")
    problems = plugin_schema.check_file(path, SCHEMA, [path])
    if expect == "nothing":
        assert problems == [], problems
    else:
        assert any(expect in p for p in problems), f"GOT {problems}\nWANT {expect}"
        assert all(p.startswith(f"{path.name}: ") for p in problems), problems


# a generated spec file in miniature (the generator reads the real ones with `git show`)
GO_SPEC = (Path(__file__).parent / "cases/plugin_schema_go/thing.hcl2spec.go.txt").read_text()


def test_generator_reads_names_types_and_blocks() -> None:
    specs = plugin_schema.parse_specs(GO_SPEC)
    specs[("config", "FlatKeyValue")] = {"key": {"type": "string"}}
    got = plugin_schema.resolve(specs, ("common", "FlatThing"))
    assert got == {
        "attributes": {"name": "string", "sizes": "list(number)", "tags": "map(string)"},
        "blocks": {
            "kv": {"nesting": "single", "attributes": {"key": "string"}, "blocks": {}},
            "part": {"nesting": "list", "attributes": {"on": "bool"}, "blocks": {}},
        },
    }


def test_generator_refuses_what_it_does_not_understand() -> None:
    with pytest.raises(ValueError, match="unrecognised spec line"):
        plugin_schema.parse_specs(GO_SPEC.replace('&hcldec.AttrSpec{Name: "on"', "&x{"))
    with pytest.raises(ValueError, match="unsupported cty type"):
        plugin_schema.cty_type("cty.DynamicPseudoType")
    with pytest.raises(KeyError, match="config.FlatKeyValue"):
        plugin_schema.resolve(plugin_schema.parse_specs(GO_SPEC), ("common", "FlatThing"))


def test_the_readme_installs_the_pinned_plugin() -> None:
    readme = (plugin_schema.REPO / "README.md").read_text()
    installs = re.findall(r"packer plugins install github\.com/hashicorp/amazon (\S+?)`", readme)
    assert installs == [f"v{plugin_schema.pinned_plugin_version()}"]
