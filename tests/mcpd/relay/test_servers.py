"""Real servers through the relay with the MCP SDK client: the handshake, tools, prompts,
resources, and many clients at once."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import Database, LiveMcpd
from tests.mcpd.relay.conftest import add_server, connect, spec, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'mcpd.db'}")


async def test_initialize_answers_the_servers_own_info_and_capabilities(servers: LiveMcpd) -> None:
    async with connect(servers, "time") as client:
        assert client.server_info is not None
        assert client.server_info.name == "mcp-time"
        assert client.protocol_version == "2025-11-25"
        assert client.server_capabilities is not None
        assert client.server_capabilities.tools is not None


async def test_tools_list_and_call_reach_mcp_server_time(servers: LiveMcpd) -> None:
    async with connect(servers, "time") as client:
        tools = await client.list_tools()
        result = await client.call_tool("get_current_time", {"timezone": "UTC"})

    assert {t.name for t in tools.tools} == {"get_current_time", "convert_time"}
    assert result.is_error is False
    assert json.loads(text_of(result))["timezone"] == "UTC"


async def test_mcp_server_git_answers_about_its_repository(servers: LiveMcpd) -> None:
    async with connect(servers, "git") as client:
        tools = await client.list_tools()
        log = await client.call_tool("git_log", {"repo_path": str(servers.settings.data_dir)})
        status = await client.call_tool("git_status", {"repo_path": _repo_of(servers)})

    assert "git_status" in {t.name for t in tools.tools}
    assert log.is_error is True  # not the configured repository: the server's own refusal
    assert status.is_error is False
    assert "On branch" in text_of(status)


def _repo_of(live: LiveMcpd) -> str:
    return str(live.settings.data_dir.parent / "repo")


async def test_the_servers_own_errors_pass_through_with_their_codes(servers: LiveMcpd) -> None:
    async with connect(servers, "fixture") as client:
        with pytest.raises(MCPError) as raised:
            await client.session.send_request(types.ListPromptsRequest(), types.ListPromptsResult)

    error = raised.value.error
    assert error.code == -32601
    assert "method not found: prompts/list" in error.message


async def test_prompts_and_resources_of_server_everything(
    live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    await add_server(live_mcpd, "everything", spec("everything", tmp_path))
    async with connect(live_mcpd, "everything") as client:
        prompts = await client.list_prompts()
        prompt = await client.get_prompt("simple-prompt")
        resources = await client.list_resources()
        templates = await client.list_resource_templates()
        first = resources.resources[0]
        read = await client.read_resource(first.uri)

    assert "simple-prompt" in {p.name for p in prompts.prompts}
    assert prompt.messages
    assert resources.resources
    assert templates.resource_templates
    assert read.contents[0].uri == first.uri


async def test_twenty_sessions_calling_at_once_each_get_their_own_answers(
    servers: LiveMcpd,
) -> None:
    answers: dict[tuple[int, int], str] = {}

    async def session(n: int) -> None:
        async with connect(servers, "fixture") as client:
            for i in range(5):
                result = await client.call_tool("echo", {"text": f"{n}-{i}"})
                answers[n, i] = text_of(result)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(session, n)

    assert answers == {(n, i): f"{n}-{i}" for n in range(20) for i in range(5)}
