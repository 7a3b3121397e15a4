"""What the error tree tells the dispatcher: which failures another backend might not have,
and how long a backend asked to be left alone."""

from __future__ import annotations

import email.utils

import pytest

from mcpctl.mcpd.llm.adapters.base import (
    BackendFailed,
    BackendUnreachable,
    RequestNotMappable,
    StreamBroken,
    retry_after,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (502, True),
        (503, True),
        (529, True),
        (429, True),
        (408, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
    ],
)
def test_backend_failed_is_retryable_for_server_errors_and_rate_limits_only(
    status: int, retryable: bool
) -> None:
    assert BackendFailed(status, "x").retryable is retryable


def test_the_other_errors_have_a_fixed_answer() -> None:
    assert BackendUnreachable("x").retryable is True
    assert StreamBroken("x").retryable is False
    assert RequestNotMappable("x").retryable is False


def test_retry_after_reads_seconds() -> None:
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    assert retry_after({"retry-after": "-3"}) == 0.0


def test_retry_after_reads_an_http_date_relative_to_now() -> None:
    later = email.utils.formatdate(NOW + 30, usegmt=True)
    earlier = email.utils.formatdate(NOW - 30, usegmt=True)

    assert retry_after({"retry-after": later}, now=NOW) == 30.0
    assert retry_after({"retry-after": earlier}, now=NOW) == 0.0


def test_retry_after_prefers_openai_milliseconds_and_ignores_nonsense() -> None:
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None
