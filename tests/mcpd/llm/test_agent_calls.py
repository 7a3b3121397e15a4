"""What a request to ``agent:NAME`` stores in its thread (the rest is proved through the
endpoint with the openai SDK, in test_openai_agent.py)."""

from __future__ import annotations

from mcpctl.mcpd.llm.agent_calls import agent_of, new_messages
from mcpctl.mcpd.llm.messages import Message, ToolCall


def test_a_requests_new_messages_follow_its_last_assistant_message() -> None:
    call = ToolCall("c1", "f", "{}")
    sent = [
        Message.system("s"),
        Message.user("a"),
        Message.assistant("", [call]),
        Message.tool("c1", "r"),
        Message.system("late"),
    ]

    assert new_messages(sent) == [Message.tool("c1", "r")]
    assert new_messages([Message.system("s"), Message.user("a")]) == [Message.user("a")]


def test_only_agent_prefixed_models_name_agents() -> None:
    assert agent_of("agent:helper") == "helper"
    assert agent_of("gpt") is None
    assert agent_of("agents:x") is None
