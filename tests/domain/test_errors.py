"""The error tree: stable codes, and problem documents rebuilt into the same errors."""

from __future__ import annotations

import pytest

from mcpctl.errors import (
    AlreadyExists,
    AppError,
    Conflict,
    InUse,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
    VersionConflict,
    error_class_for,
    from_problem,
)

ALL = [
    AppError,
    InvalidInput,
    NotFound,
    Conflict,
    AlreadyExists,
    VersionConflict,
    InUse,
    Unauthenticated,
    PermissionDenied,
    Unavailable,
    RateLimited,
]


def problem_of(error: AppError) -> dict[str, object]:
    """What mcpd writes for an error (see mcpctl.mcpd.problems)."""
    return {
        "type": f"urn:mcpctl:problem:{error.code}",
        "title": error.title,
        "status": error.http_status,
        "detail": error.message,
        "code": error.code,
        **error.details,
    }


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in ALL]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("cls", ALL)
def test_every_error_survives_a_round_trip_through_a_problem_document(
    cls: type[AppError],
) -> None:
    error = cls("something went wrong", details={"errors": [{"path": "spec.x", "message": "m"}]})

    rebuilt = from_problem(problem_of(error), cls.http_status)

    assert type(rebuilt) is cls
    assert rebuilt.message == "something went wrong"
    assert rebuilt.details == {"code": cls.code, "errors": error.details["errors"]}
    assert rebuilt.exit_code == error.exit_code


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, NotFound),
        (409, Conflict),
        (422, InvalidInput),
        (401, Unauthenticated),
        (503, Unavailable),
    ],
)
def test_an_unknown_code_falls_back_on_the_http_status(status: int, cls: type[AppError]) -> None:
    rebuilt = from_problem({"code": "from_the_future", "detail": "d"}, status)

    assert type(rebuilt) is cls


def test_a_problem_without_code_or_detail_still_rebuilds() -> None:
    assert error_class_for("", 418) is AppError
    assert from_problem({}, 500).message == "HTTP 500"
    assert from_problem({"title": "Gone"}, 410).message == "Gone"


def test_exit_codes_follow_the_conventions() -> None:
    assert [InvalidInput.exit_code, NotFound.exit_code, InUse.exit_code] == [3, 4, 5]
    assert [Unauthenticated.exit_code, PermissionDenied.exit_code] == [6, 6]
    assert [Unavailable.exit_code, AppError.exit_code] == [7, 1]
