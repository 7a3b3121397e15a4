"""The audit event of one ``tools/call`` through the relay.

Verb ``call`` on the Server, ``details`` = ``{"tool", "durationMs"}`` and, when it failed, the
upstream's JSON-RPC code (``rpcCode``). Never argument values, never results. Outcome ``ok``;
``error`` with code ``tool_error`` (the tool answered ``isError``), ``upstream_error`` (the
server answered a JSON-RPC error), ``cancelled`` (the client cancelled or went away), or the
code of our own error (``instance_unavailable``, ``unavailable``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mcpctl.domain.caller import Caller
from mcpctl.errors import AppError
from mcpctl.mcpd.services.audit import AuditEvent, AuditLog, event_for

VERB = "call"


@dataclass
class CallOutcome:
    """How a call ended, as far as the audit trail may know it."""

    code: str | None = None
    rpc_code: int | None = None
    error: AppError | None = None

    @classmethod
    def of_answer(cls, answer: Any) -> CallOutcome:
        """From the JSON-RPC answer relayed to the client."""
        if not isinstance(answer, dict):
            return cls()
        error = answer.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            return cls("upstream_error", code if isinstance(code, int) else None)
        result = answer.get("result")
        if isinstance(result, dict) and result.get("isError") is True:
            return cls("tool_error")
        return cls()


def call_event(
    caller: Caller, server: str, tool: object, duration: float, outcome: CallOutcome
) -> AuditEvent:
    details: dict[str, Any] = {
        "tool": tool if isinstance(tool, str) else None,
        "durationMs": round(duration * 1000, 2),
    }
    if outcome.rpc_code is not None:
        details["rpcCode"] = outcome.rpc_code
    event = event_for(caller, VERB, "Server", server, error=outcome.error, details=details)
    if outcome.error is None and outcome.code is not None:
        event = replace(event, outcome="error", code=outcome.code)
    return event


def record_call(
    audit: AuditLog,
    caller: Caller,
    server: str,
    tool: object,
    duration: float,
    outcome: CallOutcome,
) -> None:
    audit.record(call_event(caller, server, tool, duration, outcome))
