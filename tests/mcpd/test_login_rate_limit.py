"""Failed logins are limited per user name and per client address in a sliding window."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from mcpctl.errors import RateLimited
from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.services.ratelimit import LoginLimiter, LoginLimits
from mcpctl.mcpd.settings import Settings
from mcpctl.mcpd.state import AppState

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"
LOGIN = "/api/v1/auth/login"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[FastAPI]:
    """mcpd with an admin password and a limiter on the test's clock (3 per user, 5 per
    address, 60 s)."""
    application = create_app(settings.model_copy(update={"admin_password": SecretStr(PASSWORD)}))
    async with LifespanManager(application):
        state: AppState = application.state.mcpd
        state.auth.limiter = LoginLimiter(LoginLimits(3, 5, 60.0), clock=clock)
        yield application


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://mcpd.test")


async def login(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"user": user, "password": password})


async def test_too_many_failures_for_a_user_are_429_with_retry_after_even_for_the_password(
    app: FastAPI, clock: Clock
) -> None:
    async with client_from(app, "10.0.0.1") as one, client_from(app, "10.0.0.2") as other:
        for _ in range(2):
            assert (await login(one, "admin", "wrong")).status_code == 401
        clock.now += 20
        assert (await login(one, "admin", "wrong")).status_code == 401
        clock.now += 10

        limited = await login(other, "admin", PASSWORD)

    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "30"


async def test_the_per_user_window_slides(app: FastAPI, clock: Clock) -> None:
    async with client_from(app, "10.0.0.1") as client:
        for _ in range(3):
            await login(client, "admin", "wrong")
        assert (await login(client, "admin", PASSWORD)).status_code == 429
        clock.now += 60

        assert (await login(client, "admin", PASSWORD)).status_code == 200


async def test_the_per_address_limit_spans_user_names(app: FastAPI, clock: Clock) -> None:
    async with client_from(app, "10.0.0.1") as client, client_from(app, "10.0.0.2") as other:
        for name in ("a", "b", "c", "d", "e"):
            assert (await login(client, name, "wrong")).status_code == 401

        limited = await login(client, "admin", PASSWORD)
        elsewhere = await login(other, "admin", PASSWORD)

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "60"
    assert elsewhere.status_code == 200


async def test_a_success_clears_the_users_failures_but_not_the_addresss(
    app: FastAPI, clock: Clock
) -> None:
    async with client_from(app, "10.0.0.1") as client:
        for _ in range(2):
            await login(client, "admin", "wrong")
        assert (await login(client, "admin", PASSWORD)).status_code == 200
        for _ in range(2):
            assert (await login(client, "admin", "wrong")).status_code == 401
        assert (await login(client, "admin", PASSWORD)).status_code == 200
        # Four failures from this address so far: one more reaches its limit of five.
        assert (await login(client, "someone", "wrong")).status_code == 401

        assert (await login(client, "admin", PASSWORD)).status_code == 429


def test_the_limiter_says_how_long_until_a_slot_frees() -> None:
    clock = Clock()
    limiter = LoginLimiter(LoginLimits(per_user=2, per_client=10, window_seconds=100), clock)
    limiter.failed("u", None)
    clock.now += 30
    limiter.failed("u", None)

    with pytest.raises(RateLimited) as caught:
        limiter.check("u", None)
    clock.now += 70
    limiter.check("u", None)

    assert caught.value.retry_after == 70
