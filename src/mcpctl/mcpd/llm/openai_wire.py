"""The OpenAI chat completions wire, as mcpd's OpenAI-compatible endpoint speaks it: a caller's
request parsed into the internal format (``messages``), and answers, stream chunks and errors
rendered exactly as the OpenAI API renders them, so that the official SDKs read them unchanged.

Parsing is by hand rather than through a pydantic model: it runs once per request on the
gateway's hot path, checks only what the internal format needs, and names the offending field
the way OpenAI does (``param``: ``messages[1].tool_calls[0].function.name``).

Streams are rendered from a per-stream prefix (id, created, model) and suffix, so that a content
chunk costs one small ``json.dumps`` of its delta.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcpctl.errors import AppError, InvalidInput, RateLimited, Unavailable
from mcpctl.mcpd.llm.messages import (
    Answer,
    Message,
    NamedTool,
    Params,
    Request,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)

AGENT_PREFIX = "agent:"
# Accepted and passed to the backend as they are (through ``Params.extra``).
PASSED = frozenset(
    {"presence_penalty", "frequency_penalty", "response_format", "top_k", "min_p", "logit_bias"}
)
# Accepted and not passed on: they change nothing a backend answers, or only say the default.
IGNORED = frozenset(
    {"user", "metadata", "store", "parallel_tool_calls", "service_tier", "logprobs", "n"}
)
KNOWN = frozenset(
    {
        "model", "messages", "tools", "tool_choice", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "stop", "seed", "stream", "stream_options",
    }
) | PASSED | IGNORED  # fmt: skip
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# -- requests --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One parsed ``POST /v1/chat/completions``: the word it addresses (``model``: an Llm name,
    a pool key or ``agent:NAME``) and the request for the pool (whose ``model`` the dispatcher
    fills in)."""

    model: str
    request: Request
    stream: bool
    include_usage: bool


def bad(param: str, message: str) -> InvalidInput:
    """A 400 ``invalid_request_error`` naming ``param``."""
    return InvalidInput(message, details={"param": param})


def parse_call(body: bytes) -> ChatCall:
    """The chat call a request body asks for.

    Raises:
        InvalidInput: the body is not JSON, or a field is missing or wrong (``details.param``).
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise bad("body", f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise bad("body", "the request body must be a JSON object")
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise bad(unknown[0], f"Unrecognized request argument supplied: {unknown[0]}")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model", "model: you must name an Llm or a pool (a non-empty string)")
    if data.get("n") not in (None, 1):
        raise bad("n", "n: only one choice (n=1) is supported")
    tools = _tools(data.get("tools"))
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad("stream", "stream: must be a boolean")
    options = data.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad("stream_options", "stream_options: must be an object")
    include_usage = bool((options or {}).get("include_usage"))
    request = Request(
        model,
        _messages(data.get("messages")),
        tools,
        _tool_choice(data.get("tool_choice"), has_tools=bool(tools)),
        _params(data),
    )
    return ChatCall(model, request, bool(stream), include_usage)


def _messages(value: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise bad("messages", "messages: must be a non-empty array")
    return [_message(f"messages[{i}]", item) for i, item in enumerate(value)]


def _message(where: str, item: Any) -> Message:
    if not isinstance(item, dict):
        raise bad(where, f"{where}: must be an object")
    role = item.get("role")
    if role not in ROLES:
        expected = "system, developer, user, assistant or tool"
        raise bad(f"{where}.role", f"{where}.role: {role!r} is not one of {expected}")
    content = _content(f"{where}.content", item.get("content"))
    if role == "tool":
        call_id = item.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise bad(f"{where}.tool_call_id", f"{where}.tool_call_id: required for a tool turn")
        return Message.tool(call_id, content)
    if role == "assistant":
        calls = item.get("tool_calls") or []
        if not isinstance(calls, list):
            raise bad(f"{where}.tool_calls", f"{where}.tool_calls: must be an array")
        return Message.assistant(
            content, [_call(f"{where}.tool_calls[{i}]", c) for i, c in enumerate(calls)]
        )
    return Message("system" if role == "developer" else role, content)


def _content(where: str, value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if not isinstance(value, list):
        raise bad(where, f"{where}: must be a string or an array of text parts")
    texts = []
    for i, part in enumerate(value):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise bad(f"{where}[{i}]", f"{where}[{i}]: only text parts are supported")
        text = part.get("text")
        if not isinstance(text, str):
            raise bad(f"{where}[{i}].text", f"{where}[{i}].text: must be a string")
        texts.append(text)
    return "".join(texts)


def _call(where: str, value: Any) -> ToolCall:
    function = value.get("function") if isinstance(value, dict) else None
    if not isinstance(function, dict):
        raise bad(f"{where}.function", f"{where}.function: must be an object")
    call_id, name = value.get("id"), function.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise bad(f"{where}.id", f"{where}.id: required")
    if not isinstance(name, str) or not name:
        raise bad(f"{where}.function.name", f"{where}.function.name: required")
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        raise bad(f"{where}.function.arguments", f"{where}.function.arguments: must be a string")
    return ToolCall(call_id, name, arguments)


def _tools(value: Any) -> list[Tool]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad("tools", "tools: must be an array")
    tools = []
    for i, item in enumerate(value):
        where = f"tools[{i}]"
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or item.get("type", "function") != "function":
            raise bad(where, f"{where}: must be {{'type': 'function', 'function': {{...}}}}")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise bad(f"{where}.function.name", f"{where}.function.name: required")
        parameters = function.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise bad(f"{where}.function.parameters", f"{where}.function.parameters: an object")
        description = function.get("description") or ""
        tools.append(Tool(name, str(description), parameters))
    return tools


def _tool_choice(value: Any, *, has_tools: bool) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        choice: ToolChoice = value
    elif isinstance(value, dict) and isinstance(value.get("function"), dict):
        name = value["function"].get("name")
        if not isinstance(name, str) or not name:
            raise bad("tool_choice.function.name", "tool_choice.function.name: required")
        choice = NamedTool(name)
    else:
        raise bad("tool_choice", "tool_choice: 'auto', 'none', 'required' or a named function")
    if not has_tools:
        raise bad("tool_choice", "tool_choice: only allowed when tools are given")
    return choice


def _params(data: Mapping[str, Any]) -> Params:
    values = {key: data[key] for key in ("temperature", "top_p", "stop", "seed") if key in data}
    for key in ("max_completion_tokens", "max_tokens"):  # the newer name wins
        if data.get(key) is not None:
            values["max_tokens"] = data[key]
            tokens = data[key]
            if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens < 1:
                raise bad(key, f"{key}: must be at least 1")
            break
    try:
        params = Params.from_mapping(values)
    except ValueError as exc:
        param = str(exc).split(" ", 1)[0]
        raise bad(param, f"{param}: {str(exc).split(' ', 1)[1]}") from exc
    extra = {key: data[key] for key in PASSED if key in data}
    return Params(
        params.temperature, params.top_p, params.max_tokens, params.stop, params.seed, extra
    )


# -- answers ---------------------------------------------------------------------------------


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _calls_json(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def completion(model: str, answer: Answer) -> bytes:
    """The ``chat.completion`` object of a whole answer; ``model`` is what the caller asked."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.message.content or None,
        "refusal": None,
    }
    if answer.message.tool_calls:
        message["tool_calls"] = _calls_json(answer.message.tool_calls)
    body: dict[str, Any] = {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
    }
    if answer.usage is not None:
        body["usage"] = usage_json(answer.usage)
    return _json(body)


class ChunkWriter:
    """The ``data:`` lines of one streamed answer, all under one id."""

    __slots__ = ("_head", "_tail", "include_usage")

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.include_usage = include_usage
        self._head = (
            b'data: {"id":"'
            + completion_id().encode()
            + b'","object":"chat.completion.chunk","created":'
            + str(int(time.time())).encode()
            + b',"model":'
            + _json(model)
            + b',"choices":'
        )
        # With include_usage, OpenAI writes "usage": null on every chunk but the last.
        self._tail = (b',"usage":null' if include_usage else b"") + b"}\n\n"

    def _choice(self, delta: bytes, finish: str | None = None) -> bytes:
        reason = b"null" if finish is None else b'"' + finish.encode() + b'"'
        return (
            self._head
            + b'[{"index":0,"delta":'
            + delta
            + b',"logprobs":null,"finish_reason":'
            + reason
            + b"}]"
            + self._tail
        )

    def role(self) -> bytes:
        """The first chunk: the assistant's role and empty content."""
        return self._choice(b'{"role":"assistant","content":"","refusal":null}')

    def event(self, event: StreamEvent) -> bytes:
        """The chunk of one event (``b""`` for what OpenAI does not send as a chunk)."""
        if isinstance(event, TextDelta):
            return self._choice(b'{"content":' + _json(event.text) + b"}")
        if isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.index}
            if event.id is not None:
                call["id"] = event.id
                call["type"] = "function"
                call["function"] = {"name": event.name or "", "arguments": event.arguments}
            else:
                call["function"] = {"arguments": event.arguments}
            return self._choice(b'{"tool_calls":[' + _json(call) + b"]}")
        if isinstance(event, Usage):
            if not self.include_usage:
                return b""
            return self._head + b'[],"usage":' + _json(usage_json(event)) + b"}\n\n"
        return self._choice(b"{}", event.reason)


DONE = b"data: [DONE]\n\n"


# -- errors ----------------------------------------------------------------------------------


def should_retry(exc: AppError) -> bool:
    """Whether a client should try the same request again (``x-should-retry``): for a rate
    limit, a cooldown or backends that failed; not when no member of the pool is active (only
    an operator changes that) nor for anything the caller must fix."""
    if isinstance(exc, RateLimited):
        return True
    if isinstance(exc, Unavailable):
        return exc.retry_after is not None or "attempts" in exc.details
    return exc.http_status >= 500


def status_of(exc: AppError) -> int:
    """The HTTP status of ``exc`` here: OpenAI answers bad input with 400, not 422."""
    return 400 if exc.http_status == 422 else exc.http_status


def error_body(exc: AppError) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}`` for ``exc``."""
    status = status_of(exc)
    code = exc.details.get("code")
    if code is None:
        code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(
            status, exc.code
        )
    return {
        "error": {
            "message": exc.message,
            "type": ERROR_TYPES.get(status, "server_error"),
            "param": exc.details.get("param"),
            "code": code,
        }
    }


def error_headers(exc: AppError) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-should-retry", b"true" if should_retry(exc) else b"false")]
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        seconds = max(1, math.ceil(exc.retry_after))
        headers.append((b"retry-after", str(seconds).encode()))
    return headers


def error_event(exc: AppError) -> bytes:
    """The event that ends a stream which broke after it started."""
    return b"data: " + _json(error_body(exc)) + b"\n\n"
