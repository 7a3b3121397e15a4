"""Adapters: one provider's HTTP API behind one small interface. This is the contract the
dispatcher, chat and the OpenAI-compatible endpoint build on.

    adapter = adapter_for("openai", url="http://127.0.0.1:8080/v1", api_key=None,
                          timeouts=Timeouts(connect=5, read=120), client=origins)
    answer = await adapter.complete(Request(model, [Message.user("Hi")]))
    async with aclosing(adapter.stream(request)) as events:
        async for event in events:   # TextDelta | ToolCallDelta | Finish | Usage
            ...

- ``complete(request) -> Answer`` and ``stream(request) -> AsyncGenerator[StreamEvent]``,
  with ``Request``, ``Answer`` and the events of ``mcpctl.mcpd.llm.messages``.
- One attempt per call: no retries, no fallback, no caching. The caller owns the shared
  ``mcpctl.http11.Origins`` (kept-alive connections, one bounded pool per origin); the adapter
  sets its own per-request ``Timeouts`` (connect, read between chunks, write).
- Errors (``base``): ``BackendUnreachable`` and ``BackendFailed`` with ``retryable`` true
  (5xx, 408, 429) happen before the first event, so the caller may try another backend;
  ``BackendFailed`` for 400/401/403/404/422 is final; ``StreamBroken`` comes after the first
  event and is final (the caller has shown text); ``RequestNotMappable`` is final.
- A stream sends nothing until it is first iterated; every error surfaces from ``__anext__``.
  A successful stream ends with one ``Finish`` and then, if the backend reported it, ``Usage``.

    provider    module        url is                     wire
    openai      openai.py     the API base (.../v1)      POST {url}/chat/completions
    anthropic   anthropic.py  the host                   POST {url}/v1/messages
"""

from __future__ import annotations

from mcpctl.errors import InvalidInput
from mcpctl.http11 import Origins
from mcpctl.mcpd.llm.adapters.anthropic import AnthropicAdapter
from mcpctl.mcpd.llm.adapters.base import (
    Adapter,
    BackendError,
    BackendFailed,
    BackendUnreachable,
    RequestNotMappable,
    StreamBroken,
    Timeouts,
)
from mcpctl.mcpd.llm.adapters.openai import OpenAIAdapter

ADAPTERS: dict[str, type[OpenAIAdapter] | type[AnthropicAdapter]] = {
    "anthropic": AnthropicAdapter,
    "openai": OpenAIAdapter,
}
PROVIDERS = tuple(sorted(ADAPTERS))


def adapter_for(
    provider: str,
    *,
    url: str,
    api_key: str | None,
    timeouts: Timeouts,
    client: Origins,
) -> Adapter:
    """The adapter of ``provider`` for the backend at ``url``.

    Raises:
        InvalidInput: an unknown provider, or a url that is not http(s) (or has no host).
    """
    cls = ADAPTERS.get(provider)
    if cls is None:
        known = ", ".join(repr(p) for p in PROVIDERS)
        raise InvalidInput(
            f"unknown LLM provider {provider!r}: expected one of {known}",
            details={"field": "provider"},
        )
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(
            f"LLM url {url!r} must start with http:// or https://", details={"field": "url"}
        )
    return cls(url, api_key, timeouts, client)


__all__ = [
    "PROVIDERS",
    "Adapter",
    "BackendError",
    "BackendFailed",
    "BackendUnreachable",
    "RequestNotMappable",
    "StreamBroken",
    "Timeouts",
    "adapter_for",
]
