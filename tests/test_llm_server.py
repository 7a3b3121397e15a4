"""The real LLM server of tests/llm_server.py speaks the OpenAI chat API that the LLM layer of
mcpd relies on: a plain completion, a streamed one (server-sent events ending in [DONE]) and a
tool call forced by ``tool_choice``. Answers are a 135M model's, so only the shape is checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI
from tests.llm_server import LlmServer, find_gguf, llm_server

__all__ = ["llm_server"]

GET_TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The current time in a timezone.",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "e.g. Europe/Paris"}},
            "required": ["timezone"],
        },
    },
}


@pytest.fixture
def client(llm_server: LlmServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=llm_server.url, timeout=60, trust_env=False) as http:
        yield http


def chat(llm_server: LlmServer, **extra: Any) -> dict[str, Any]:
    return {
        "model": llm_server.model,
        "messages": [{"role": "user", "content": "What time is it in Paris?"}],
        "temperature": 0,
        "max_tokens": 24,
        **extra,
    }


@pytest.mark.slow
def test_chat_completion_returns_an_assistant_message(
    llm_server: LlmServer, client: httpx.Client
) -> None:
    response = client.post("/chat/completions", json=chat(llm_server))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == llm_server.model
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["message"]["content"].strip()
    assert body["usage"]["completion_tokens"] > 0


@pytest.mark.slow
def test_streamed_chat_completion_sends_chunks_then_done(
    llm_server: LlmServer, client: httpx.Client
) -> None:
    with client.stream("POST", "/chat/completions", json=chat(llm_server, stream=True)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]

    assert all(line.startswith("data: ") for line in events), events
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in events[:-1]]
    assert len(chunks) > 2
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text.strip()
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


@pytest.mark.slow
def test_forced_tool_choice_returns_a_call_of_that_function(
    llm_server: LlmServer, client: httpx.Client
) -> None:
    request = chat(
        llm_server,
        tools=[GET_TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        max_tokens=64,
    )
    response = client.post("/chat/completions", json=request)

    assert response.status_code == 200, response.text
    (choice,) = response.json()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_time"
    arguments = json.loads(call["function"]["arguments"])
    assert isinstance(arguments["timezone"], str)


def test_a_missing_llm_venv_skips_loudly_or_fails_in_ci(tmp_path: Path) -> None:
    expected = pytest.fail.Exception if IN_CI else pytest.skip.Exception
    with pytest.raises(expected) as raised:
        find_gguf(tmp_path / "no-venv" / "bin" / "python")

    assert "scripts/llm-server-tools" in str(raised.value)
    if not IN_CI:
        assert str(raised.value).startswith("!!! SKIPPING REAL-LLM TEST: ")
