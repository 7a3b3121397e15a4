"""`mcpctl chat` against a live mcpd: one message with `-m` (the answer on stdout as it streams,
tool calls and the thread's id on stderr, exit codes), the REPL fed from stdin, and, end to end
with the real LLM (llama.cpp with SmolLM2) and a real MCP server, a forced tool call whose
thread is read back with `describe thread` after mcpd restarted on the same database."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcpctl.mcpd.settings import Settings
from tests.cli.conftest import Mcpctl, base_env
from tests.conftest import LiveMcpd, serve_mcpd
from tests.llm_server import LlmServer, llm_server
from tests.mcpd.instances.running import TIME_SERVER
from tests.mcpd.llm.faulty_backend import (
    Behaviour,
    Drop,
    FakeCall,
    FaultyBackend,
    Ok,
    serve_backend,
)
from tests.people import add_person_live, bearer

__all__ = ["llm_server"]

SQLITE = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
START = 10.0
NOW = FakeCall("time__get_current_time", '{"timezone": "Asia/Tokyo"}', id="call-1")


@contextmanager
def backend_thread(*script: Behaviour, default: Behaviour | None = None) -> Iterator[FaultyBackend]:
    """The faulty backend served by a loop of its own: the CLI under test blocks this one."""
    ready = threading.Event()
    held: dict[str, Any] = {}

    async def serve() -> None:
        held["stop"] = asyncio.Event()
        held["loop"] = asyncio.get_running_loop()
        async with serve_backend(FaultyBackend("a", script, default=default)) as backend:
            held["backend"] = backend
            ready.set()
            await held["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(START), "the faulty backend did not start"
    try:
        yield held["backend"]
    finally:
        held["loop"].call_soon_threadsafe(held["stop"].set)
        thread.join(START)


def put(live: LiveMcpd, kind: str, name: str, spec: dict[str, Any]) -> None:
    plural = {"Llm": "llms", "Agent": "agents", "Server": "servers", "Project": "projects"}
    body = {"apiVersion": "mcpctl/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    response = httpx.put(
        f"{live.url}/api/v1/{plural[kind]}/{name}", json=body, headers=bearer(live.token)
    )
    assert response.is_success, response.text


def agent_on(live: LiveMcpd, url: str, **llm: Any) -> None:
    """Agent ``helper`` on Llm ``gpt`` at ``url``, with project ``clock`` (the time server)."""
    put(live, "Llm", "gpt", {"provider": "openai", "url": url, "model": "m", **llm})
    put(live, "Server", "time", {"command": TIME_SERVER, "args": ["--local-timezone", "UTC"]})
    put(live, "Project", "clock", {"servers": ["time"]})
    put(live, "Agent", "helper", {"llm": "gpt", "project": "clock", "systemPrompt": "Help."})


def thread_of(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith("thread: ")]
    return line.removeprefix("thread: ")


def messages(live: LiveMcpd, thread: str) -> list[tuple[str, str | None]]:
    response = httpx.get(f"{live.url}/api/v1/threads/{thread}", headers=bearer(live.token))
    assert response.status_code == 200, response.text
    return [(m["role"], m["content"]) for m in response.json()["messages"]]


# -- one message -----------------------------------------------------------------------------


@SQLITE
def test_m_prints_the_answer_and_the_thread_and_thread_goes_on_in_it(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd
) -> None:
    with backend_thread(Ok("First answer."), Ok("Second answer.")) as backend:
        agent_on(live_mcpd, backend.url)
        first = mcpctl("chat", "helper", "-m", "Hello there")
        thread = thread_of(first.stderr)
        second = mcpctl("chat", "helper", "--thread", thread, "-m", "Again")

    assert first.exit_code == 0, first.output
    assert first.stdout == "First answer.\n"
    assert second.exit_code == 0, second.output
    assert second.stdout == "Second answer.\n"
    assert thread_of(second.stderr) == thread
    assert messages(live_mcpd, thread) == [
        ("user", "Hello there"),
        ("assistant", "First answer."),
        ("user", "Again"),
        ("assistant", "Second answer."),
    ]


@SQLITE
def test_a_tool_call_is_one_line_on_stderr(mcpctl: Mcpctl, live_mcpd: LiveMcpd) -> None:
    with backend_thread(Ok("", (NOW,)), Ok("Late.")) as backend:
        agent_on(live_mcpd, backend.url)
        result = mcpctl("chat", "helper", "-m", "Time in Tokyo?")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Late.\n"
    (tool,) = [line for line in result.stderr.splitlines() if line.startswith("tool: ")]
    assert tool.startswith('tool: time__get_current_time({"timezone": "Asia/Tokyo"}) -> {')
    assert '"timezone": "Asia/Tokyo"' in tool


@SQLITE
def test_m_dash_reads_the_message_from_stdin(mcpctl: Mcpctl, live_mcpd: LiveMcpd) -> None:
    with backend_thread(default=Ok("Read it.")) as backend:
        agent_on(live_mcpd, backend.url)
        result = mcpctl("chat", "helper", "-m", "-", stdin="line one\nline two\n")
        thread = thread_of(result.stderr)

    assert result.exit_code == 0, result.output
    assert messages(live_mcpd, thread)[0] == ("user", "line one\nline two\n")


@SQLITE
def test_a_broken_answer_prints_what_came_then_exits_7_with_the_thread(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd
) -> None:
    with backend_thread(Drop(after=2, answer=Ok("One two three four."))) as backend:
        agent_on(live_mcpd, backend.url)
        result = mcpctl("chat", "helper", "-m", "Hi")

    assert result.exit_code == 7
    assert result.stdout == "One two\n"
    assert "error: llm/gpt: the answer broke off" in result.stderr
    assert messages(live_mcpd, thread_of(result.stderr)) == [("user", "Hi")]


@SQLITE
def test_refusals_exit_with_their_codes(mcpctl: Mcpctl, live_mcpd: LiveMcpd) -> None:
    token = add_person_live(live_mcpd, "bob")
    with backend_thread() as backend:
        agent_on(live_mcpd, backend.url)
        unknown = mcpctl("chat", "nobody", "-m", "Hi")
        denied = mcpctl("chat", "helper", "-m", "Hi", env={"MCPCTL_TOKEN": token})
        personality = mcpctl("chat", "helper", "-p", "nope", "-m", "Hi")
        empty = mcpctl("chat", "helper", "-m", " ")
        asked = list(backend.requests)

    assert (unknown.exit_code, unknown.stderr) == (4, "error: agent/nobody not found\n")
    assert denied.exit_code == 6
    assert denied.stderr == "error: user 'bob' may not run agents/helper\n"
    assert personality.exit_code == 4
    assert "has no personality 'nope'" in personality.stderr
    assert (empty.exit_code, empty.stderr) == (3, "error: -m: the message is empty\n")
    assert asked == []


@SQLITE
def test_no_active_llm_exits_7_naming_the_pool(mcpctl: Mcpctl, live_mcpd: LiveMcpd) -> None:
    with backend_thread() as backend:
        agent_on(live_mcpd, backend.url, status="inactive")
        result = mcpctl("chat", "helper", "-m", "Hi")

    assert result.exit_code == 7
    assert "error: No active Llm in pool 'gpt' (pinned: gpt)" in result.stderr
    assert thread_of(result.stderr)  # to try again in the same thread


# -- the REPL --------------------------------------------------------------------------------


@SQLITE
def test_the_repl_chats_in_one_thread_until_new_and_exit(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd
) -> None:
    script = "One\nTwo\n/thread\n/new\nThree\n/exit\nnever sent\n"
    with backend_thread(Ok("A1."), Ok("A2."), Ok("A3.")) as backend:
        agent_on(live_mcpd, backend.url)
        result = mcpctl("chat", "helper", stdin=script)
        asked = len(backend.requests)

    assert result.exit_code == 0, result.output
    assert result.stdout == "A1.\nA2.\nA3.\n"
    assert asked == 3
    listed = httpx.get(f"{live_mcpd.url}/api/v1/threads", headers=bearer(live_mcpd.token))
    threads = sorted(listed.json()["items"], key=lambda t: t["createdAt"])
    assert [t["messageCount"] for t in threads] == [4, 2]
    assert f"thread: {threads[0]['id']}" in result.stderr


@SQLITE
def test_the_repl_takes_multi_line_messages_and_switches_threads_and_personalities(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd
) -> None:
    with backend_thread(default=Ok("Ok.")) as backend:
        agent_on(live_mcpd, backend.url)
        first = mcpctl("chat", "helper", "-m", "Start")
        thread = thread_of(first.stderr)
        script = (
            f"/thread {thread}\nfirst \\\nsecond\n"
            '"""\nin a\n\nblock\n"""\n'
            "/personality nope\nHi\n/personality -\n/thread nope\n/what\n"
        )
        result = mcpctl("chat", "helper", stdin=script)

    assert result.exit_code == 0, result.output
    assert messages(live_mcpd, thread)[2:] == [
        ("user", "first \nsecond"),
        ("assistant", "Ok."),
        ("user", "in a\n\nblock"),
        ("assistant", "Ok."),
    ]
    assert "has no personality 'nope'" in result.stderr  # the REPL goes on
    assert "personality: (the default)" in result.stderr
    assert "error: thread 'nope' not found" in result.stderr
    assert "/new: a new thread" in result.stderr  # help for an unknown command


# -- the real LLM, end to end ----------------------------------------------------------------


@pytest.mark.slow
def test_a_forced_tool_call_with_the_real_llm_is_stored_and_read_back_after_a_restart(
    llm_server: LlmServer, settings: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    with serve_mcpd(settings) as live:
        env = base_env(config) | {"MCPCTL_SERVER": live.url, "MCPCTL_TOKEN": live.token}
        mcpctl = Mcpctl(config, env)
        agent_on(live, llm_server.url)
        put(
            live,
            "Llm",
            "gpt",
            {
                "provider": "openai",
                "url": llm_server.url,
                "model": llm_server.model,
                "defaultParams": {"temperature": 0.0, "seed": 1, "max_tokens": 48},
            },
        )
        forced = httpx.post(
            f"{live.url}/api/v1/agents/helper/chat",
            json={
                # The 135M model closes the JSON of its arguments for this wording (it
                # does not for every one: its answers are for plumbing, not for sense).
                "message": "What is the current time in the timezone Asia/Tokyo?",
                "toolChoice": "time__get_current_time",
                "stream": False,
            },
            headers=bearer(live.token),
            timeout=120,
        )
        assert forced.status_code == 200, forced.text
        body = forced.json()
        thread = body["thread"]["id"]
        answered = mcpctl("chat", "helper", "--thread", thread, "-m", "Thanks!")
    assert answered.exit_code == 0, answered.output
    assert answered.stdout.strip()
    assert thread_of(answered.stderr) == thread

    with serve_mcpd(settings) as again:
        env = base_env(config) | {"MCPCTL_SERVER": again.url, "MCPCTL_TOKEN": again.token}
        described = Mcpctl(config, env)("describe", "thread", thread)

    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call = body["messages"][1]["toolCalls"][0]
    assert call["name"] == "time__get_current_time"
    result = body["messages"][2]
    assert result["toolCallId"] == call["id"]
    assert json.loads(result["content"])["timezone"] == "Asia/Tokyo"
    assert body["answer"] == body["messages"][3]["content"]
    assert described.exit_code == 0, described.output
    assert re.search(r"^Messages:\s+6$", described.stdout, re.MULTILINE)
    conversation = described.stdout[described.stdout.index("[0]") :]
    heads = [line.split(" · ")[0] for line in conversation.splitlines() if line.startswith("[")]
    assert heads == [
        "[0] user",
        "[1] assistant",
        "[2] tool",
        "[3] assistant",
        "[4] user",
        "[5] assistant",
    ]
    assert "calls time__get_current_time(" in described.stdout
    assert "What is the current time in the timezone Asia/Tokyo?" in described.stdout
    assert "Thanks!" in described.stdout
