"""``adapter_for``: one adapter per provider name, and a clear error for anything else."""

from __future__ import annotations

import pytest

from mcpctl.errors import InvalidInput
from mcpctl.http11 import Origins
from mcpctl.mcpd.llm.adapters import PROVIDERS, Timeouts, adapter_for
from mcpctl.mcpd.llm.adapters.anthropic import AnthropicAdapter
from mcpctl.mcpd.llm.adapters.openai import OpenAIAdapter

pytestmark = pytest.mark.anyio


async def test_each_provider_gets_its_adapter_on_its_own_path() -> None:
    async with Origins() as client:
        openai = adapter_for(
            "openai", url="http://gpu:8000/v1/", api_key=None, timeouts=Timeouts(), client=client
        )
        anthropic = adapter_for(
            "anthropic",
            url="https://api.anthropic.com",
            api_key="k",
            timeouts=Timeouts(),
            client=client,
        )

    assert isinstance(openai, OpenAIAdapter)
    assert openai.url == "http://gpu:8000/v1/chat/completions"
    assert isinstance(anthropic, AnthropicAdapter)
    assert anthropic.url == "https://api.anthropic.com/v1/messages"
    assert PROVIDERS == ("anthropic", "openai")


async def test_an_unknown_provider_is_named_in_the_error() -> None:
    async with Origins() as client:
        with pytest.raises(InvalidInput, match="unknown LLM provider 'gemini'") as raised:
            adapter_for("gemini", url="http://x", api_key=None, timeouts=Timeouts(), client=client)

    assert raised.value.details == {"field": "provider"}
    assert "'anthropic', 'openai'" in raised.value.message


async def test_a_url_that_is_not_http_is_refused() -> None:
    async with Origins() as client:
        with pytest.raises(InvalidInput, match="must start with http") as raised:
            adapter_for(
                "openai", url="gpu:8000/v1", api_key=None, timeouts=Timeouts(), client=client
            )

    assert raised.value.details == {"field": "url"}
