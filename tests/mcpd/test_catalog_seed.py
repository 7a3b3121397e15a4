"""The template catalog directory is seeded into the database at every start of mcpd."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest

from mcpctl.mcpd.services.catalog import CATALOG_LABEL, CATALOG_VALUE, read_catalog
from mcpctl.mcpd.settings import Settings
from tests.mcpd.manifests import must_put, server, template
from tests.mcpd.running import running

pytestmark = pytest.mark.anyio

CATALOG_LOGGER = "mcpctl.mcpd.services.catalog"


def template_yaml(name: str, command: str = "uvx", extra: str = "") -> str:
    return (
        "apiVersion: mcpctl/v1\n"
        "kind: Template\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        f"  command: {command}\n"
        f"  args: [mcp-server-{name}]\n"
        f"{extra}"
    )


def write(settings: Settings, file: str, text: str) -> Path:
    path = settings.templates_dir / file
    path.write_text(text)
    return path


async def template_names(api: httpx.AsyncClient) -> list[str]:
    items = (await api.get("/api/v1/templates")).json()["items"]
    return [t["metadata"]["name"] for t in items]


async def test_a_template_file_is_upserted_at_start(settings: Settings) -> None:
    write(settings, "time.yaml", template_yaml("time"))

    async with running(settings) as api:
        response = await api.get("/api/v1/templates/time")

    assert response.status_code == 200
    shown = response.json()
    assert shown["spec"]["command"] == "uvx"
    assert shown["metadata"]["labels"] == {CATALOG_LABEL: CATALOG_VALUE}


async def test_a_file_with_several_templates_seeds_them_all(settings: Settings) -> None:
    write(settings, "pair.yaml", template_yaml("time") + "---\n" + template_yaml("fetch"))

    async with running(settings) as api:
        assert await template_names(api) == ["fetch", "time"]


async def test_a_changed_file_updates_the_template_at_the_next_start(settings: Settings) -> None:
    path = write(settings, "time.yaml", template_yaml("time"))
    async with running(settings):
        pass

    path.write_text(template_yaml("time", command="pipx"))
    async with running(settings) as api:
        shown = (await api.get("/api/v1/templates/time")).json()

    assert shown["spec"]["command"] == "pipx"
    assert shown["metadata"]["resourceVersion"] == "2"


async def test_an_unchanged_catalog_leaves_templates_untouched(settings: Settings) -> None:
    write(settings, "time.yaml", template_yaml("time"))
    async with running(settings):
        pass

    async with running(settings) as api:
        shown = (await api.get("/api/v1/templates/time")).json()

    assert shown["metadata"]["resourceVersion"] == "1"


async def test_a_removed_file_deletes_its_template_unless_a_server_uses_it(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    used = write(settings, "time.yaml", template_yaml("time"))
    unused = write(settings, "fetch.yaml", template_yaml("fetch"))
    async with running(settings) as api:
        await must_put(api, server("clock", fromTemplate="time"))

    used.unlink()
    unused.unlink()
    with caplog.at_level(logging.WARNING, logger=CATALOG_LOGGER):
        async with running(settings) as api:
            names = await template_names(api)
            clock = await api.get("/api/v1/servers/clock")

    assert names == ["time"]
    assert clock.json()["status"]["effective"]["command"] == "uvx"
    kept = [r for r in caplog.records if r.name == CATALOG_LOGGER and "time" in r.getMessage()]
    assert kept
    assert kept[0].levelno == logging.WARNING


async def test_templates_created_through_the_api_are_not_removed_by_seeding(
    settings: Settings,
) -> None:
    async with running(settings) as api:
        await must_put(api, template("mine", command="node"))

    async with running(settings) as api:
        assert await template_names(api) == ["mine"]


async def test_a_bad_file_is_reported_and_does_not_stop_start_up(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    write(settings, "a-broken.yaml", "apiVersion: mcpctl/v1\nkind: Template\nmetadata: [unclosed\n")
    write(settings, "b-unknown-field.yaml", template_yaml("strict", extra="  bogus: 1\n"))
    write(settings, "c-not-runnable.yaml", template_yaml("docker", extra="  runtime: docker\n"))
    write(settings, "d-server.yaml", "apiVersion: mcpctl/v1\nkind: Server\nmetadata: {name: x}\n")
    write(settings, "time.yaml", template_yaml("time"))

    with caplog.at_level(logging.ERROR, logger=CATALOG_LOGGER):
        async with running(settings) as api:
            names = await template_names(api)
            health = await api.get("/healthz")

    assert health.status_code == 200
    assert names == ["time"]
    reported = "\n".join(r.getMessage() for r in caplog.records if r.name == CATALOG_LOGGER)
    assert re.search(r"a-broken\.yaml:\d+:\d+: invalid YAML", reported)
    assert "b-unknown-field.yaml:1: spec.bogus: Extra inputs are not permitted" in reported
    assert "template/docker" in reported
    assert "d-server.yaml:1" in reported


async def test_a_missing_catalog_directory_is_not_an_error(settings: Settings) -> None:
    missing = settings.model_copy(update={"templates_dir": settings.templates_dir / "nope"})

    async with running(missing) as api:
        assert await template_names(api) == []


def test_read_catalog_labels_templates_and_reports_bad_documents(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(template_yaml("time"))
    (tmp_path / "bad.yaml").write_text("---\n" + template_yaml("x", extra="  nope: 1\n"))
    (tmp_path / "ignored.txt").write_text("not yaml: [")

    templates, errors = read_catalog(tmp_path)

    assert [t.metadata.name for t in templates] == ["time"]
    assert templates[0].metadata.labels == {CATALOG_LABEL: CATALOG_VALUE}
    assert errors == ["bad.yaml:2: spec.nope: Extra inputs are not permitted"]
