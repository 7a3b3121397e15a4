"""OpenAI chat completions: OpenAI itself and every server that copies its API (vLLM,
llama.cpp, Ollama, LM Studio...). ``url`` is the API base, ``http://host:port/v1``.

What the copies do differently, and how this adapter copes:

- llama.cpp repeats a tool call's ``id`` and ``name`` on every delta: only the first delta of
  an index carries them on.
- llama.cpp refuses ``content: null`` on an assistant turn: an assistant turn made of tool
  calls is sent with ``content: ""``, which OpenAI accepts too.
- Some servers (Ollama) end a turn of tool calls with ``finish_reason: "stop"``; it becomes
  ``tool_calls`` so that a caller's tool loop can rely on it. Unknown reasons become ``stop``.
- Servers that ignore ``stream_options.include_usage`` (llama.cpp) send no usage chunk: the
  stream then carries no ``Usage`` event. A server that ignores ``stream`` and answers JSON is
  read as one answer.
- A missing tool call id is made up (``call_`` and 24 hex digits).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from mcpctl.http11 import Origins
from mcpctl.mcpd.llm.adapters.base import BackendFailed, Timeouts
from mcpctl.mcpd.llm.adapters.http import Exchange, Truncated, encode, error_text
from mcpctl.mcpd.llm.messages import (
    Answer,
    Finish,
    FinishReason,
    Message,
    NamedTool,
    Request,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
EMPTY_SCHEMA = {"type": "object", "properties": {}}


class OpenAIAdapter:
    """``POST {url}/chat/completions``, streamed or not (see ``base.Adapter``)."""

    def __init__(self, url: str, api_key: str | None, timeouts: Timeouts, client: Origins) -> None:
        self.url = url.rstrip("/") + "/chat/completions"
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._exchange = Exchange(client, self.url, auth, timeouts)

    async def complete(self, request: Request) -> Answer:
        return await self._exchange.post(encode(request_body(request, stream=False)), parse_answer)

    def stream(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        return self._exchange.stream(
            lambda: encode(request_body(request, stream=True)), ChunkDecoder(), parse_answer
        )


def request_body(request: Request, *, stream: bool) -> dict[str, Any]:
    """The JSON body of a chat completion request."""
    params = request.params
    body: dict[str, Any] = dict(params.extra)
    body["model"] = request.model
    body["messages"] = [_message(m) for m in request.messages]
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.parameters) or EMPTY_SCHEMA,
                },
            }
            for tool in request.tools
        ]
        if request.tool_choice is not None:  # OpenAI refuses a choice without tools
            body["tool_choice"] = _choice(request.tool_choice)
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.max_tokens is not None:
        body["max_tokens"] = params.max_tokens
    if params.stop is not None:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    return body


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def _choice(choice: ToolChoice) -> Any:
    if isinstance(choice, NamedTool):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def parse_answer(data: Any) -> Answer:
    """An answer from the JSON of a chat completion.

    Raises:
        BackendFailed: the body is an error document.
        KeyError, TypeError, ValueError...: the body has another shape (see ``SHAPE_ERRORS``).
    """
    if "choices" not in data and "error" in data:
        raise _in_band_error(data)
    choice = data["choices"][0]
    message = choice["message"]
    calls = tuple(_tool_call(call) for call in message.get("tool_calls") or ())
    return Answer(
        Message.assistant(_text(message.get("content")), calls),
        finish_reason(choice.get("finish_reason"), has_calls=bool(calls)),
        _usage(data.get("usage")),
    )


def finish_reason(reason: str | None, *, has_calls: bool) -> FinishReason:
    mapped = FINISH_REASONS.get(reason or "stop", "stop")
    return "tool_calls" if has_calls and mapped == "stop" else mapped


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # Content parts: the text ones, in order.
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def _tool_call(call: dict[str, Any]) -> ToolCall:
    function = call["function"]
    return ToolCall(call.get("id") or _new_call_id(), function["name"], _arguments(function))


def _arguments(function: dict[str, Any]) -> str:
    arguments = function.get("arguments")
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _usage(usage: Any) -> Usage | None:
    if not usage:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return Usage(prompt, completion, usage.get("total_tokens") or prompt + completion)


def _in_band_error(data: Any) -> BackendFailed:
    """An ``{"error": ...}`` document in a 2xx answer or a stream; its ``code`` is the status
    when it is one (vLLM), else 500 (the backend failed and did not say how)."""
    error = data["error"]
    code = error.get("code") if isinstance(error, dict) else None
    try:
        status = int(code) if code is not None else 500
    except (TypeError, ValueError):
        status = 500
    return BackendFailed(status if 400 <= status <= 599 else 500, error_text(encode(data)))


class ChunkDecoder:
    """``chat.completion.chunk`` events into stream events. ``Finish`` (and ``Usage``, which
    OpenAI sends after the finish chunk) are held back until ``[DONE]``: only then is the
    answer known to be complete."""

    __slots__ = ("_calls", "_reason", "_usage", "finished")

    def __init__(self) -> None:
        self.finished = False
        self._reason: str | None = None
        self._usage: Usage | None = None
        self._calls: dict[int, int] = {}  # the backend's tool call index -> ours

    def feed(self, event: str, data: str) -> list[StreamEvent]:
        if data == "[DONE]":
            self.finished = True
            return self._closing()
        chunk = json.loads(data)
        choices = chunk.get("choices")
        if not choices:
            if "error" in chunk:
                raise _in_band_error(chunk)
            if chunk.get("usage"):
                self._usage = _usage(chunk["usage"])
            return []
        if chunk.get("usage"):
            self._usage = _usage(chunk["usage"])
        choice = choices[0]
        if choice.get("finish_reason"):
            self._reason = choice["finish_reason"]
        delta = choice.get("delta")
        if not delta:
            return []
        events: list[StreamEvent] = []
        text = delta.get("content")
        if text:
            events.append(TextDelta(text))
        calls = delta.get("tool_calls")
        if calls:
            events.extend(self._call_deltas(calls))
        return events

    def _call_deltas(self, calls: list[dict[str, Any]]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for position, call in enumerate(calls):
            key = call.get("index", position)
            function = call.get("function") or {}
            arguments = _arguments(function)
            index = self._calls.get(key)
            if index is None:
                index = self._calls[key] = len(self._calls)
                call_id = call.get("id") or _new_call_id()
                events.append(ToolCallDelta(index, arguments, call_id, function.get("name") or ""))
            elif arguments:
                events.append(ToolCallDelta(index, arguments))
        return events

    def end(self) -> list[StreamEvent]:
        if self._reason is None:
            raise Truncated("the stream ended before the answer finished")
        return self._closing()

    def _closing(self) -> list[StreamEvent]:
        events: list[StreamEvent] = [
            Finish(finish_reason(self._reason, has_calls=bool(self._calls)))
        ]
        if self._usage is not None:
            events.append(self._usage)
        return events
