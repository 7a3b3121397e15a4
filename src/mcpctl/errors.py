"""One error tree for all three programs.

    AppError                      code "internal"        HTTP 500  exit 1
    ├── InvalidInput              code "invalid_input"   HTTP 422  exit 3
    ├── NotFound                  code "not_found"       HTTP 404  exit 4
    ├── Conflict                  code "conflict"        HTTP 409  exit 5
    │   ├── AlreadyExists         code "already_exists"
    │   ├── VersionConflict       code "version_conflict"
    │   └── InUse                 code "in_use"
    ├── Unauthenticated           code "unauthenticated" HTTP 401  exit 6
    ├── PermissionDenied          code "permission_denied" HTTP 403 exit 6
    ├── RateLimited               code "rate_limited"    HTTP 429  exit 7
    └── Unavailable               code "unavailable"     HTTP 503  exit 7

Each error carries its stable ``code``; the HTTP layer writes it into an RFC 9457 problem
document and the client rebuilds the same class from it (``from_problem``), so the CLI prints
the daemon's message and exits with the documented code.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every error mcpctl raises on purpose."""

    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def __str__(self) -> str:
        return self.message


class InvalidInput(AppError):
    """The caller sent something that breaks a rule; fix the input and retry."""

    code = "invalid_input"
    title = "Invalid input"
    http_status = 422
    exit_code = 3


class NotFound(AppError):
    code = "not_found"
    title = "Not found"
    http_status = 404
    exit_code = 4


class Conflict(AppError):
    code = "conflict"
    title = "Conflict"
    http_status = 409
    exit_code = 5


class AlreadyExists(Conflict):
    code = "already_exists"
    title = "Already exists"


class VersionConflict(Conflict):
    """The stored object moved on since the caller read it."""

    code = "version_conflict"
    title = "Resource version conflict"


class InUse(Conflict):
    """The object is referenced by others and cannot be deleted or narrowed."""

    code = "in_use"
    title = "In use"


class Unauthenticated(AppError):
    code = "unauthenticated"
    title = "Unauthenticated"
    http_status = 401
    exit_code = 6


class PermissionDenied(AppError):
    code = "permission_denied"
    title = "Permission denied"
    http_status = 403
    exit_code = 6


class Unavailable(AppError):
    """A dependency is down or overloaded; retrying later may succeed."""

    code = "unavailable"
    title = "Unavailable"
    http_status = 503
    exit_code = 7

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class RateLimited(Unavailable):
    code = "rate_limited"
    title = "Too many requests"
    http_status = 429


def _all_subclasses(cls: type[AppError]) -> list[type[AppError]]:
    out: list[type[AppError]] = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def error_class_for(code: str, status: int | None = None) -> type[AppError]:
    """Return the error class for a problem ``code`` (falling back on the HTTP status)."""
    classes = _all_subclasses(AppError)
    for cls in classes:
        if cls.code == code:
            return cls
    for cls in classes:
        if status is not None and cls.http_status == status and cls.__base__ is AppError:
            return cls
    return AppError


def from_problem(problem: dict[str, Any], status: int) -> AppError:
    """Rebuild an AppError from an RFC 9457 problem document sent by mcpd."""
    cls = error_class_for(str(problem.get("code", "")), status)
    message = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    details = {k: v for k, v in problem.items() if k not in {"type", "title", "status", "detail"}}
    return cls(message, details=details)
