"""One table that maps errors to RFC 9457 problem+json responses."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from mcpctl.errors import AppError, Unavailable
from mcpctl.mcpd.request_id import HEADER as REQUEST_ID_HEADER
from mcpctl.mcpd.request_id import request_id_of
from mcpctl.mcpd.services.audit import rejected_event
from mcpctl.resources.validation import error_path, invalid_input

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem document; ``code`` is stable, other members depend on it."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    code: str


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem documents for these statuses."""
    described = {
        "description": "RFC 9457 problem document",
        "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}},
    }
    return dict.fromkeys(statuses, described)


def problem_document(
    status: int, code: str, title: str, detail: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": f"urn:mcpctl:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **(extra or {}),
    }


def problem_of(exc: AppError) -> dict[str, Any]:
    return problem_document(exc.http_status, exc.code, exc.title, exc.message, exc.details)


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_document(status, code, title, detail, extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _path(loc: tuple[Any, ...]) -> str:
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
    return error_path(parts) or str(loc[0] if loc else "body")


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = None
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        # Rounded up: a client that waits exactly this long must not be refused again.
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return problem_response(exc.http_status, exc.code, exc.title, exc.message, exc.details, headers)


def _validation_entry(error: dict[str, Any]) -> dict[str, str]:
    if error.get("type") == "json_invalid":
        # The location of a JSON syntax error is a character offset, not a field.
        reason = error.get("ctx", {}).get("error")
        return {"path": "body", "message": f"invalid JSON: {reason}" if reason else "invalid JSON"}
    return {"path": _path(tuple(error.get("loc", ()))), "message": str(error.get("msg", ""))}


def _audit_rejected(request: Request, error: AppError) -> None:
    # A mutating request refused for its body never reaches a service, so it is audited here
    # (only once authenticated: get_caller leaves the caller on the request).
    caller = getattr(request.state, "caller", None)
    state = getattr(request.app.state, "mcpd", None)
    if caller is None or state is None:
        return
    name = request.path_params.get("name")
    event = rejected_event(caller, request.method, request.url.path, name, error)
    if event is not None:
        state.audit.record(event)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    error = invalid_input([_validation_entry(e) for e in exc.errors()])
    _audit_rejected(request, error)
    return problem_response(422, error.code, error.title, error.message, error.details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # The framework's "cannot parse the body" is bad input like any other: 422 invalid_input.
        detail = f"body: {exc.detail}"
        errors = [{"path": "body", "message": str(exc.detail)}]
        return problem_response(422, "invalid_input", "Invalid input", detail, {"errors": errors})
    code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(
        exc.status_code, "http_error"
    )
    return problem_response(
        exc.status_code, code, str(exc.detail), str(exc.detail), headers=dict(exc.headers or {})
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    # This handler answers outside the middleware stack, so it echoes the request id itself.
    request_id = request_id_of(request)
    return problem_response(
        500,
        "internal",
        "Internal error",
        "internal error; the mcpd log has the details",
        headers={REQUEST_ID_HEADER: request_id} if request_id else None,
    )


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
