"""The project endpoint over HTTP with a real SDK client: listing, naming, calling, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcpctl.domain.naming import NAME_PATTERN
from mcpctl.mcplocal.app import project_of
from tests.conftest import LiveMcpd
from tests.mcplocal.conftest import (
    Mcplocal,
    apply_project,
    connect,
    define_servers,
    text_of,
    time_spec,
)
from tests.mcplocal.probe_server import PROBE_ERROR_CODE

pytestmark = pytest.mark.anyio


def innermost(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def test_tools_of_every_server_are_listed_with_their_server_prefix(
    live_mcpd: LiveMcpd,
    mcplocal: Mcplocal,
    time_server: str,
    git_server: Path,
) -> None:
    apply_project(live_mcpd, "work", ["time", "git"])
    async with connect(mcplocal.url("work")) as (client, _):
        assert client.server_capabilities.tools is not None
        assert client.server_capabilities.tools.list_changed
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"time__get_current_time", "time__convert_time", "git__git_status"} <= names
        result = await client.call_tool("time__get_current_time", {"timezone": "Europe/Berlin"})
        assert not result.is_error
        assert "Europe/Berlin" in text_of(result)
        log = await client.call_tool("git__git_log", {"repo_path": str(git_server), "max_count": 1})
        assert "first commit" in text_of(log)


async def test_prompts_resources_and_templates_of_a_server_are_served(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, everything: str
) -> None:
    apply_project(live_mcpd, "demo", ["everything"])
    async with connect(mcplocal.url("demo")) as (client, _):
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert {"everything__simple-prompt", "everything__args-prompt"} <= prompts
        prompt = await client.get_prompt("everything__args-prompt", {"city": "Oslo"})
        assert "Oslo" in str(prompt.messages[0].content)

        resources = (await client.list_resources()).resources
        assert resources
        assert all(r.name.startswith("everything__") for r in resources)
        read = await client.read_resource(resources[0].uri)
        assert read.contents
        assert read.contents[0].uri == resources[0].uri

        templates = (await client.list_resource_templates()).resource_templates
        text_template = next(t for t in templates if "text" in t.uri_template)
        assert text_template.name.startswith("everything__")
        dynamic = await client.read_resource(
            text_template.uri_template.replace("{resourceId}", "3")
        )
        assert dynamic.contents

        tools = {t.name for t in (await client.list_tools()).tools}
        assert "everything__echo" in tools
        echo = await client.call_tool("everything__echo", {"message": "hello"})
        assert "hello" in text_of(echo)


async def test_progress_of_a_long_call_reaches_the_client(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, everything: str
) -> None:
    apply_project(live_mcpd, "demo", ["everything"])
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with connect(mcplocal.url("demo")) as (client, _):
        result = await client.call_tool(
            "everything__trigger-long-running-operation",
            {"duration": 0.3, "steps": 3},
            progress_callback=on_progress,
        )
    assert "completed" in text_of(result)
    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_cancelling_a_call_cancels_it_upstream(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, probe: str
) -> None:
    apply_project(live_mcpd, "probing", ["probe"])
    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with connect(mcplocal.url("probing")) as (client, _):
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await client.call_tool(
                    "probe__sleep", {"seconds": 60}, progress_callback=on_progress
                )

            tg.start_soon(call)
            with anyio.fail_after(10):
                await started.wait()
            tg.cancel_scope.cancel()
        answer = await client.call_tool("probe__was_cancelled", {"wait": 10})
        assert answer.structured_content == {"result": True}


async def test_an_upstream_error_passes_through_with_its_code(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, probe: str
) -> None:
    apply_project(live_mcpd, "probing", ["probe"])
    async with connect(mcplocal.url("probing")) as (client, _):
        with pytest.raises(MCPError) as caught:
            await client.call_tool("probe__fail", {})
    assert caught.value.code == PROBE_ERROR_CODE
    assert caught.value.message == "probe failed on purpose"


async def test_an_unknown_tool_is_invalid_params_with_our_code(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, time_server: str
) -> None:
    apply_project(live_mcpd, "work", ["time"])
    async with connect(mcplocal.url("work")) as (client, _):
        with pytest.raises(MCPError) as caught:
            await client.call_tool("time__no_such_tool", {})
    assert caught.value.code == types.INVALID_PARAMS
    assert caught.value.data == {"code": "not_found"}


async def test_long_names_are_shortened_and_still_call_the_right_tool(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    server = "a-server-with-a-name-long-enough-to-push-tools-past-the-limit"
    define_servers(live_mcpd, **{server: time_spec()})
    apply_project(live_mcpd, "long", [server])
    async with connect(mcplocal.url("long")) as (client, _):
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert len(names) == 2
        assert all(NAME_PATTERN.fullmatch(name) for name in names)
        current = next(name for name in names if "get_current" in name)
        assert len(current) == 64
        assert current.startswith(server[:20])
        result = await client.call_tool(current, {"timezone": "Asia/Tokyo"})
    assert "Asia/Tokyo" in text_of(result)


async def test_without_prefix_a_name_offered_twice_is_listed_once_and_reported(
    live_mcpd: LiveMcpd,
    mcplocal: Mcplocal,
    time_server: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    define_servers(live_mcpd, clock=time_spec())
    apply_project(live_mcpd, "plain", ["time", "clock"], toolPrefix="never")
    caplog.set_level(logging.WARNING, "mcpctl.mcplocal")
    async with connect(mcplocal.url("plain")) as (client, _):
        names = sorted(tool.name for tool in (await client.list_tools()).tools)
        assert names == ["convert_time", "get_current_time"]
        result = await client.call_tool("get_current_time", {"timezone": "UTC"})
        assert not result.is_error
    async with httpx.AsyncClient(base_url=mcplocal.base) as http:
        status = (await http.get("/projects/plain/status")).json()
    assert status["toolPrefix"] == "never"
    assert (
        "tool 'get_current_time' is offered by time and clock; only time's is listed"
        in status["problems"]
    )
    assert any("offered by time and clock" in r.getMessage() for r in caplog.records)


async def test_a_project_mcpd_does_not_have_is_refused_with_not_found(
    mcplocal: Mcplocal,
) -> None:
    with pytest.raises(ExceptionGroup) as caught:
        async with Client(mcplocal.url("nowhere"), mode="legacy", cache=None):
            pass
    error = innermost(caught.value)
    assert isinstance(error, MCPError)
    assert error.code == types.INVALID_PARAMS
    assert error.data == {"code": "not_found"}


async def test_requests_naming_another_host_or_origin_are_refused(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal
) -> None:
    apply_project(live_mcpd, "work", [])
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=mcplocal.base, headers=headers) as http:
        rebinding = await http.post(
            "/projects/work/mcp", json=body, headers={"Host": "attacker.example:7461"}
        )
        assert rebinding.status_code == 421
        foreign = await http.post(
            "/projects/work/mcp", json=body, headers={"Origin": "http://attacker.example"}
        )
        assert foreign.status_code == 403
        sessions = await http.get("/sessions", headers={"Host": "attacker.example"})
        assert sessions.status_code == 421
        assert (await http.get("/healthz")).json()["status"] == "ok"


async def test_a_client_of_the_sessionless_protocol_lists_and_calls(
    live_mcpd: LiveMcpd, mcplocal: Mcplocal, time_server: str
) -> None:
    apply_project(live_mcpd, "work", ["time"])
    async with Client(mcplocal.url("work"), cache=None) as client:
        assert client.protocol_version == "2026-07-28"
        assert "time__convert_time" in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool(
            "time__convert_time",
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        )
    assert "Asia/Tokyo" in text_of(result)


@pytest.mark.parametrize(
    ("path", "root", "project"),
    [
        ("/projects/work/mcp", "", "work"),
        ("/mcplocal/projects/work/mcp", "/mcplocal", "work"),
        ("/projects/work/mcp/", "", None),
        ("/projects//mcp", "", None),
        ("/projects/a/b/mcp", "", None),
        ("/projects/work/status", "", None),
    ],
)
def test_the_hot_path_takes_the_requests_the_router_would_give_the_endpoint(
    path: str, root: str, project: str | None
) -> None:
    scope = {"type": "http", "path": path, "root_path": root, "headers": []}
    assert project_of(scope) == project
    assert project_of({**scope, "type": "websocket"}) is None
