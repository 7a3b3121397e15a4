"""JSON-RPC and MCP protocol facts that mcpd's relay and mcplocal need, and our errors as JSON-RPC errors.

Mapping of the AppError tree (docs/relay.md):

=========================  ===========  =========================================
error                      HTTP status  JSON-RPC (``data.code`` = the stable code)
=========================  ===========  =========================================
BadRequest (transport)     400          -32600 INVALID_REQUEST, -32700 PARSE_ERROR
InvalidInput, NotFound     422, 404     -32602 INVALID_PARAMS
Unauthenticated            401          -32603 INTERNAL_ERROR (+ WWW-Authenticate)
PermissionDenied           403          -32603 INTERNAL_ERROR
Unavailable (crash, loop)  503          -32603 INTERNAL_ERROR (+ Retry-After)
anything else              500          -32603 INTERNAL_ERROR
=========================  ===========  =========================================

The HTTP status is used where no session exists yet (or for the session itself: 401, 403,
404); inside a session a JSON-RPC error travels in a 200 answer, and a ``tools/call`` that
fails on our side answers a tool result with ``isError`` (the model can read why), as
CONVENTIONS.md asks. The body is always a JSON-RPC error in ``application/json``: the MCP
SDK client surfaces such a body's message at any status, where a problem document would be
reduced to "Server returned an error response".
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from mcpctl.errors import AppError, InvalidInput, NotFound, Unavailable

JsonObject = dict[str, Any]

# 2**63 has 19 digits: a shorter integer always fits orjson's 64 bits.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_TEXT = re.compile("[0-9]{19}")

# The handshake era (initialize + Mcp-Session-Id); oldest first.
SUPPORTED_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
# A request without MCP-Protocol-Version is read as this version (the 2025-06-18 spec).
DEFAULT_VERSION = "2025-03-26"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNSUPPORTED_PROTOCOL_VERSION = -32022
REQUEST_CANCELLED = -32800

SESSION_TERMINATED = "Session terminated"  # what the SDK client itself says for a 404


class BadRequest(InvalidInput):
    """A message the endpoint cannot take: HTTP 400 (the transport's answer, not a 422), with
    its own JSON-RPC code."""

    http_status = 400

    def __init__(self, message: str, *, rpc_code: int = INVALID_REQUEST) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code


def encode(message: Any) -> bytes:
    """Compact UTF-8 JSON. orjson, about 20 times faster than ``json`` on the messages of a
    call; ``json`` for what orjson refuses (integers past 64 bits, keys that are not
    strings), so the output never depends on which one wrote it beyond float spelling."""
    try:
        return orjson.dumps(message)
    except TypeError:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes | str) -> Any:
    """JSON, parsed by orjson; by ``json`` what orjson refuses (lone surrogates) and what it
    would change: it reads an integer past 64 bits as a float, so a run of 19 digits or more
    anywhere sends the text to ``json``, which keeps every integer exact. ``json``'s error
    (a ValueError) is the one raised when neither takes it."""
    long_digits = _LONG_DIGITS if isinstance(data, bytes) else _LONG_DIGITS_TEXT
    if long_digits.search(data) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def result(request_id: Any, value: JsonObject) -> JsonObject:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def error(request_id: Any, code: int, message: str, data: Any = None) -> JsonObject:
    body: JsonObject = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def negotiate(requested: object, upstream: str) -> str:
    """The version to answer ``initialize`` with: the client's when we (and the upstream,
    whose messages pass through unchanged) speak it, else the upstream's."""
    if isinstance(requested, str) and requested in SUPPORTED_VERSIONS and requested <= upstream:
        return requested
    return upstream if upstream in SUPPORTED_VERSIONS else LATEST_VERSION


def unsupported_version(request_id: Any, requested: str | None) -> JsonObject:
    """The answer to a 2026-07-28 (handshake-less) request: the SDK client's ``mode="auto"``
    falls back to ``initialize`` on it."""
    return error(
        request_id,
        UNSUPPORTED_PROTOCOL_VERSION,
        f"protocol version {requested!r} is not supported here; "
        f"use the initialize handshake ({', '.join(SUPPORTED_VERSIONS)})",
        {"supported": list(SUPPORTED_VERSIONS), "requested": requested},
    )


def rpc_code_of(exc: AppError) -> int:
    if isinstance(exc, BadRequest):
        return exc.rpc_code
    return INVALID_PARAMS if isinstance(exc, InvalidInput | NotFound) else INTERNAL_ERROR


def error_of(request_id: Any, exc: AppError) -> JsonObject:
    """``exc`` as a JSON-RPC error; ``data`` carries its stable code (and details)."""
    data: JsonObject = {"code": exc.code, **exc.details}
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        data["retryAfter"] = exc.retry_after
    return error(request_id, rpc_code_of(exc), exc.message, data)


def tool_error(exc: AppError) -> JsonObject:
    """A ``tools/call`` result telling the model why the call could not run."""
    return {
        "content": [{"type": "text", "text": exc.message}],
        "isError": True,
        "_meta": {"mcpctl/error": exc.code},
    }


def progress_token_of(params: object) -> object | None:
    """The ``_meta.progressToken`` of a request's params, if it asked for progress."""
    if isinstance(params, dict):
        meta = params.get("_meta")
        if isinstance(meta, dict):
            token = meta.get("progressToken")
            if isinstance(token, str | int) and not isinstance(token, bool):
                return token
    return None


def parse_message(body: bytes) -> JsonObject:
    """One JSON-RPC message from a request body.

    Raises:
        BadRequest: anything but one JSON-RPC 2.0 message (2025-11-25 has no batches).
    """
    try:
        message = decode(body)
    except ValueError as exc:
        raise BadRequest(
            f"Parse error: the body is not JSON ({exc})", rpc_code=PARSE_ERROR
        ) from exc
    if isinstance(message, list):
        raise BadRequest("JSON-RPC batches are not supported (MCP 2025-06-18 removed them)")
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise BadRequest("the body is not a JSON-RPC 2.0 message")
    method = message.get("method")
    if method is not None and not isinstance(method, str):
        raise BadRequest("method must be a string")
    if "id" in message and not _is_id(message["id"]):
        raise BadRequest("id must be a string or an integer (MCP allows no other)")
    return message


def _is_id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)
