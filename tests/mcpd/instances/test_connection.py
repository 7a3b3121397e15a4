"""The shared stdio connection, against real servers: mcp-server-time, mcp-server-git and the
stdio fixture (for progress, cancellation, server requests and crashes)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpctl.jsonrpc import asks
from mcpctl.jsonrpc.asks import Asks, Tie
from mcpctl.mcpd.instances.connection import ConnectionLost, RequestTimeout, RpcError
from tests.mcpd.instances.running import (
    GIT_SERVER,
    TIME_SERVER,
    fixture_args,
    running,
    text_of,
)

pytestmark = pytest.mark.anyio


async def test_initialize_result_is_kept_and_tools_can_be_listed_and_called(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, [TIME_SERVER]) as srv:
        info = srv.connection.initialize_result
        tools = await srv.connection.request("tools/list")
        result = await srv.connection.request(
            "tools/call",
            {"name": "convert_time", "arguments": convert("UTC", "10:30", "Asia/Tokyo")},
        )

    assert info["serverInfo"]["name"] == "mcp-time"
    assert "tools" in info["capabilities"]
    assert {t["name"] for t in tools["tools"]} == {"get_current_time", "convert_time"}
    assert json.loads(text_of(result))["target"]["datetime"].endswith("T19:30:00+09:00")


def convert(source: str, time: str, target: str) -> dict[str, str]:
    return {"source_timezone": source, "time": time, "target_timezone": target}


async def test_fifty_concurrent_calls_on_one_connection_get_their_own_results(
    tmp_path: Path,
) -> None:
    times = [f"{h:02d}:{m:02d}" for h in range(10) for m in (0, 15, 30, 45, 50)]
    async with running(tmp_path, [TIME_SERVER]) as srv:
        results = await asyncio.gather(
            *(
                srv.connection.request(
                    "tools/call",
                    {"name": "convert_time", "arguments": convert("UTC", t, "UTC")},
                )
                for t in times
            )
        )

    got = [json.loads(text_of(r))["source"]["datetime"][11:16] for r in results]
    assert len(times) == 50
    assert got == times


async def test_git_server_answers_calls_on_a_real_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    await anyio.run_process(["git", "init", "-q", str(repo)])
    (repo / "a.txt").write_text("hello\n")
    async with running(tmp_path, [GIT_SERVER, "--repository", str(repo)]) as srv:
        tools = await srv.connection.request("tools/list")
        status = await srv.connection.request(
            "tools/call", {"name": "git_status", "arguments": {"repo_path": str(repo)}}
        )

    assert len(tools["tools"]) >= 10
    assert "a.txt" in text_of(status)


async def test_progress_reaches_only_the_caller_that_asked_with_its_token_removed(
    tmp_path: Path,
) -> None:
    seen: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    async with running(tmp_path, fixture_args()) as srv:
        params = {"name": "progress", "arguments": {"steps": 3}, "_meta": {"progressToken": "x"}}
        await asyncio.gather(
            srv.connection.request("tools/call", params, on_progress=seen.append),
            srv.connection.request("tools/call", {"name": "echo", "arguments": {"text": "hi"}}),
            srv.connection.request(
                "tools/call",
                {"name": "progress", "arguments": {"steps": 1}},
                on_progress=other.append,
            ),
        )

    assert seen == [{"progress": i, "total": 3} for i in (1, 2, 3)]
    assert other == [{"progress": 1, "total": 1}]


async def test_a_cancelled_caller_cancels_the_request_upstream(tmp_path: Path) -> None:
    async with running(tmp_path, fixture_args()) as srv:
        call = asyncio.create_task(srv.connection.request("tools/call", {"name": "hang"}))
        await asyncio.sleep(0)  # the task runs up to its first wait: the request is pending
        assert srv.connection.in_flight == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The server saw notifications/cancelled for the upstream id, and still serves.
        echoed = await srv.connection.request(
            "tools/call", {"name": "echo", "arguments": {"text": "after"}}
        )
        with anyio.fail_after(5):
            await srv.stderr.wait_for("cancelled ")

    assert text_of(echoed) == "after"
    assert srv.connection.in_flight == 0


async def test_a_timeout_cancels_upstream_and_says_so(tmp_path: Path) -> None:
    async with running(tmp_path, fixture_args()) as srv:
        with pytest.raises(RequestTimeout) as caught:
            await srv.connection.request("tools/call", {"name": "hang"}, timeout=0.2)
        with anyio.fail_after(5):
            await srv.stderr.wait_for("cancelled ")

    assert "did not answer tools/call within 0.2 s" in str(caught.value)


async def test_server_requests_get_ping_answered_and_the_rest_refused(tmp_path: Path) -> None:
    notes: list[dict[str, Any]] = []
    async with running(tmp_path, fixture_args()) as srv:
        srv.connection.subscribe(notes.append)
        result = await srv.connection.request("tools/call", {"name": "ask"})

    answers = json.loads(text_of(result))
    assert answers["ping"]["result"] == {}
    for method in ("sampling/createMessage", "roots/list"):
        assert answers[method]["error"]["code"] == -32601
        assert "not supported by the shared connection" in answers[method]["error"]["message"]
    assert notes == [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}]


async def test_json_rpc_errors_pass_through_with_their_code(tmp_path: Path) -> None:
    async with running(tmp_path, fixture_args()) as srv:
        with pytest.raises(RpcError) as caught:
            await srv.connection.request("resources/list")

    assert caught.value.code == -32601
    assert caught.value.to_json()["message"] == "method not found: resources/list"


async def test_a_crash_fails_every_pending_request_at_once(tmp_path: Path) -> None:
    async with running(tmp_path, fixture_args()) as srv:
        hanging = [
            asyncio.create_task(srv.connection.request("tools/call", {"name": "hang"}))
            for _ in range(5)
        ]
        await asyncio.sleep(0)
        assert srv.connection.in_flight == 5
        with anyio.fail_after(1):
            crashed = srv.connection.request("tools/call", {"name": "crash"})
            results = await asyncio.gather(crashed, *hanging, return_exceptions=True)
            await srv.handle.wait()

        with pytest.raises(ConnectionLost):
            await srv.connection.request("tools/list")

    assert all(isinstance(r, ConnectionLost) for r in results)
    assert "'srv'" in str(results[0])
    assert "exited" in str(results[0])


async def test_opted_in_features_are_declared_and_asked_of_the_tied_caller(
    tmp_path: Path,
) -> None:
    features = ("sampling", "roots")
    asked: list[dict[str, Any]] = []

    def outlet(message: dict[str, Any]) -> None:
        asked.append(message)
        answer: dict[str, Any] = {
            "model": "m",
            "role": "assistant",
            "content": {"type": "text", "text": "4"},
        }
        if message["method"] == "roots/list":
            answer = {"roots": [{"uri": "file:///work"}]}
        tie.asks.answered({"jsonrpc": "2.0", "id": message["id"], "result": answer})

    tie = Tie("session", Asks("mcpd"), asks.declared(features), outlet)
    async with running(tmp_path, fixture_args(), client_features=features) as srv:
        declared = json.loads(
            text_of(await srv.connection.request("tools/call", {"name": "client"}))
        )
        result = await srv.connection.request("tools/call", {"name": "ask"}, tie=tie)

    assert declared == {"sampling": {}, "roots": {}}
    assert [m["method"] for m in asked] == ["sampling/createMessage", "roots/list"]
    assert asked[0]["params"]["maxTokens"] == 10
    answers = json.loads(text_of(result))
    assert answers["ping"]["result"] == {}
    assert answers["sampling/createMessage"]["result"]["content"]["text"] == "4"
    assert answers["roots/list"]["result"] == {"roots": [{"uri": "file:///work"}]}


async def test_a_request_that_no_single_caller_is_in_flight_for_gets_an_error(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, fixture_args(), client_features=("sampling",)) as srv:
        untied = await srv.connection.request(
            "tools/call", {"name": "ask", "arguments": {"methods": ["sampling/createMessage"]}}
        )
        hanging = asyncio.create_task(
            srv.connection.request("tools/call", {"name": "hang"}, tie=Tie("a", Asks("x"), {}))
        )
        await asyncio.sleep(0.1)
        two = await srv.connection.request(
            "tools/call",
            {"name": "ask", "arguments": {"methods": ["sampling/createMessage", "roots/list"]}},
            tie=Tie("b", Asks("y"), {"sampling": {}}, print),
        )
        hanging.cancel()

    assert json.loads(text_of(untied))["sampling/createMessage"]["error"]["message"] == (
        "sampling/createMessage: no client request is in flight to tie it to"
    )
    answers = json.loads(text_of(two))
    assert (
        "cannot be tied to one client: 2 client sessions"
        in (answers["sampling/createMessage"]["error"]["message"])
    )
    # roots were not opted in to: refused as before, whoever is in flight.
    assert "not supported by the shared connection" in answers["roots/list"]["error"]["message"]
