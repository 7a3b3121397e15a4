"""Anthropic Messages: ``POST {url}/v1/messages`` with ``x-api-key`` and
``anthropic-version: 2023-06-01``; ``url`` is the host, ``https://api.anthropic.com``.

How the internal format maps:

- System messages, wherever they are, join (blank line between) into the top-level ``system``.
- An assistant turn becomes ``text`` and ``tool_use`` blocks (``input`` is the parsed
  arguments: arguments that are not a JSON object raise ``RequestNotMappable``); an empty
  assistant turn is left out, as Anthropic refuses empty text blocks.
- Tool results become ``tool_result`` blocks of a user turn; consecutive tool results and user
  texts share one user turn, as the API wants results right after the ``tool_use`` turn.
- ``max_tokens`` is required: ``params.max_tokens`` or 1024. ``stop`` is sent as
  ``stop_sequences``; ``seed`` has no equivalent and is not sent.
- ``tool_choice``: auto, any (for required), tool (named), none; only sent with tools.
- ``stop_reason``: end_turn and stop_sequence are ``stop``, max_tokens ``length``, tool_use
  ``tool_calls``, refusal ``content_filter``; others ``stop``.
- Usage: prompt tokens count cache reads and writes too (Anthropic reports them apart).
- Streaming: ``message_start``, ``content_block_start/delta/stop`` (``text_delta``,
  ``input_json_delta``), ``message_delta`` (stop reason, usage), ``message_stop``, ``ping``
  and ``error``; an ``error`` event carries the status its type stands for (overloaded_error
  is 529, as Anthropic answers it over HTTP). ``Finish`` and ``Usage`` come at message_stop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from mcpctl.http11 import Origins
from mcpctl.mcpd.llm.adapters.base import BackendFailed, RequestNotMappable, Timeouts
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
    arguments_object,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
ERROR_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
EMPTY_SCHEMA = {"type": "object", "properties": {}}


class AnthropicAdapter:
    """``POST {url}/v1/messages``, streamed or not (see ``base.Adapter``)."""

    def __init__(self, url: str, api_key: str | None, timeouts: Timeouts, client: Origins) -> None:
        self.url = url.rstrip("/") + "/v1/messages"
        headers = {"anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        self._exchange = Exchange(client, self.url, headers, timeouts)

    async def complete(self, request: Request) -> Answer:
        return await self._exchange.post(encode(request_body(request, stream=False)), parse_answer)

    def stream(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        return self._exchange.stream(
            lambda: encode(request_body(request, stream=True)), EventDecoder(), parse_answer
        )


def request_body(request: Request, *, stream: bool) -> dict[str, Any]:
    """The JSON body of a Messages request.

    Raises:
        RequestNotMappable: a tool turn without its call id, or arguments that are not an object.
    """
    params = request.params
    system, messages = _messages(request.messages)
    body: dict[str, Any] = dict(params.extra)
    body["model"] = request.model
    body["max_tokens"] = params.max_tokens or DEFAULT_MAX_TOKENS
    body["messages"] = messages
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [
            {
                "name": tool.name,
                "description": tool.description,
                "input_schema": dict(tool.parameters) or EMPTY_SCHEMA,
            }
            for tool in request.tools
        ]
        if request.tool_choice is not None:
            body["tool_choice"] = _choice(request.tool_choice)
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.stop is not None:
        body["stop_sequences"] = list(params.stop)
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


def _messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            system.append(message.content)
        elif message.role == "assistant":
            blocks = _assistant_blocks(message)
            if blocks:
                _append(turns, "assistant", blocks)
        elif message.role == "tool":
            if not message.tool_call_id:
                raise RequestNotMappable("a tool result without the id of its tool call")
            block = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            _append(turns, "user", [block])
        else:
            _append(turns, "user", [{"type": "text", "text": message.content}])
    return "\n\n".join(system), turns


def _assistant_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        try:
            arguments = arguments_object(call)
        except ValueError as exc:
            raise RequestNotMappable(str(exc)) from exc
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _choice(choice: ToolChoice) -> dict[str, Any]:
    if isinstance(choice, NamedTool):
        return {"type": "tool", "name": choice.name}
    return {"type": "any" if choice == "required" else choice}


def parse_answer(data: Any) -> Answer:
    """An answer from the JSON of a Messages response.

    Raises:
        BackendFailed: the body is an error document.
        KeyError, TypeError, ValueError...: the body has another shape (see ``SHAPE_ERRORS``).
    """
    if data.get("type") == "error":
        raise _error(data)
    text: list[str] = []
    calls: list[ToolCall] = []
    for block in data["content"]:
        if block["type"] == "text":
            text.append(block["text"])
        elif block["type"] == "tool_use":
            calls.append(ToolCall(block["id"], block["name"], json.dumps(block.get("input") or {})))
    usage = data.get("usage") or {}
    prompt = _prompt_tokens(usage)
    completion = usage.get("output_tokens") or 0
    return Answer(
        Message.assistant("".join(text), calls),
        STOP_REASONS.get(data.get("stop_reason") or "end_turn", "stop"),
        Usage(prompt, completion, prompt + completion) if usage else None,
    )


def _prompt_tokens(usage: dict[str, Any]) -> int:
    return int(
        (usage.get("input_tokens") or 0)
        + (usage.get("cache_creation_input_tokens") or 0)
        + (usage.get("cache_read_input_tokens") or 0)
    )


def _error(data: Any) -> BackendFailed:
    kind = str((data.get("error") or {}).get("type"))
    return BackendFailed(ERROR_STATUSES.get(kind, 500), error_text(encode(data)))


class EventDecoder:
    """Messages stream events into stream events."""

    __slots__ = ("_completion", "_fragments", "_prompt", "_reason", "_tools", "finished")

    def __init__(self) -> None:
        self.finished = False
        self._prompt = 0
        self._completion = 0
        self._reason: str | None = None
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._fragments: set[int] = set()  # tool calls that got argument fragments

    def feed(self, event: str, data: str) -> list[StreamEvent]:
        payload = json.loads(data)
        kind = payload.get("type") or event
        if kind == "content_block_delta":
            return self._delta(payload)
        if kind == "content_block_start":
            return self._start(payload)
        if kind == "content_block_stop":
            index = self._tools.get(payload["index"])
            if index is not None and index not in self._fragments:
                return [ToolCallDelta(index, "{}")]  # a call without arguments
            return []
        if kind == "message_start":
            usage = payload["message"].get("usage") or {}
            self._prompt = _prompt_tokens(usage)
            self._completion = usage.get("output_tokens") or 0
        elif kind == "message_delta":
            self._reason = payload["delta"].get("stop_reason") or self._reason
            usage = payload.get("usage") or {}
            self._completion = usage.get("output_tokens") or self._completion
            self._prompt = _prompt_tokens(usage) or self._prompt
        elif kind == "message_stop":
            self.finished = True
            return self._closing()
        elif kind == "error":
            raise _error(payload)
        return []

    def _delta(self, payload: dict[str, Any]) -> list[StreamEvent]:
        delta = payload["delta"]
        if delta["type"] == "text_delta":
            return [TextDelta(delta["text"])] if delta["text"] else []
        if delta["type"] == "input_json_delta" and delta["partial_json"]:
            index = self._tools[payload["index"]]
            self._fragments.add(index)
            return [ToolCallDelta(index, delta["partial_json"])]
        return []  # thinking, signatures, citations: not part of the internal format

    def _start(self, payload: dict[str, Any]) -> list[StreamEvent]:
        block = payload["content_block"]
        if block["type"] == "tool_use":
            index = self._tools[payload["index"]] = len(self._tools)
            given = block.get("input")
            if given:
                self._fragments.add(index)
            return [
                ToolCallDelta(index, json.dumps(given) if given else "", block["id"], block["name"])
            ]
        if block["type"] == "text" and block.get("text"):
            return [TextDelta(block["text"])]
        return []

    def end(self) -> list[StreamEvent]:
        raise Truncated("the stream ended before message_stop")

    def _closing(self) -> list[StreamEvent]:
        reason = STOP_REASONS.get(self._reason or "end_turn", "stop")
        total = self._prompt + self._completion
        return [Finish(reason), Usage(self._prompt, self._completion, total)]
