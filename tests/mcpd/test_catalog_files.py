"""The shipped template catalog (src/mcpctl/templates/) loads cleanly and every template runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mcpctl
from mcpctl.mcpd.services.catalog import read_catalog
from mcpctl.resources.envelope import Resource
from mcpctl.resources.servers import runnable_problem
from mcpctl.resources.templates import TemplateSpec

CATALOG_DIR = Path(mcpctl.__file__).resolve().parent / "templates"

REQUIRED_TEMPLATES = {
    "time",
    "fetch",
    "git",
    "filesystem",
    "memory",
    "everything",
    "github",
    "postgres",
    "slack",
    "brave-search",
}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ARG_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _catalog() -> list[Resource[TemplateSpec]]:
    templates, errors = read_catalog(CATALOG_DIR)
    assert errors == []
    return templates


def _by_name() -> dict[str, TemplateSpec]:
    return {t.metadata.name: t.spec for t in _catalog()}


def test_every_catalog_file_loads_without_errors() -> None:
    templates, errors = read_catalog(CATALOG_DIR)
    assert errors == []
    assert len(templates) == len(list(CATALOG_DIR.glob("*.yaml")))


def test_catalog_contains_every_required_template() -> None:
    assert set(_by_name()) >= REQUIRED_TEMPLATES


def test_catalog_contains_a_docker_template_with_an_image() -> None:
    docker = [spec for spec in _by_name().values() if spec.runtime == "docker"]
    assert docker
    assert all(spec.image for spec in docker)


def test_template_names_are_unique_dns_labels() -> None:
    names = [t.metadata.name for t in _catalog()]
    assert len(names) == len(set(names))
    for name in names:
        assert len(name) <= 63, name
        assert _DNS_LABEL.fullmatch(name), name


def test_each_file_holds_one_template_named_after_the_file(tmp_path: Path) -> None:
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        single = tmp_path / path.stem
        single.mkdir()
        (single / path.name).write_text(path.read_text())
        templates, errors = read_catalog(single)
        assert errors == []
        assert [t.metadata.name for t in templates] == [path.stem]


@pytest.mark.parametrize("name", sorted(REQUIRED_TEMPLATES))
def test_required_template_is_runnable_as_shipped(name: str) -> None:
    assert runnable_problem(_by_name()[name]) is None


def test_every_template_is_runnable_as_shipped() -> None:
    for template in _catalog():
        assert runnable_problem(template.spec) is None, template.metadata.name


def test_every_template_has_a_description() -> None:
    for template in _catalog():
        assert template.spec.description.strip(), template.metadata.name


def test_every_parameter_has_a_description() -> None:
    for template in _catalog():
        for param in template.spec.parameters:
            assert param.description.strip(), f"{template.metadata.name}/{param.name}"


def test_every_secret_parameter_is_required_or_described() -> None:
    for template in _catalog():
        for param in template.spec.parameters:
            if param.secret:
                where = f"{template.metadata.name}/{param.name}"
                assert param.required or param.description.strip(), where


def test_secret_parameters_have_no_default() -> None:
    for template in _catalog():
        for param in template.spec.parameters:
            if param.secret:
                assert param.default is None, f"{template.metadata.name}/{param.name}"


def test_every_arg_reference_names_a_parameter_that_always_has_a_value() -> None:
    for template in _catalog():
        params = {p.name: p for p in template.spec.parameters}
        for arg in template.spec.args:
            for ref in _ARG_REFERENCE.findall(arg):
                assert ref in params, f"{template.metadata.name}: $({ref}) is not a parameter"
                param = params[ref]
                where = f"{template.metadata.name}: $({ref})"
                assert param.required or param.default is not None, where


def test_parameters_do_not_collide_with_fixed_env_entries() -> None:
    for template in _catalog():
        fixed = {e.name for e in template.spec.env}
        assert fixed.isdisjoint(p.name for p in template.spec.parameters), template.metadata.name


def test_npx_templates_run_non_interactively() -> None:
    for template in _catalog():
        if template.spec.command == "npx":
            assert template.spec.args[0] == "-y", template.metadata.name
