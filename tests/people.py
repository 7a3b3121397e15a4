"""People for tests, made the way people are made: the admin applies a User object with a
password (``PUT /api/v1/users/NAME``), then the person logs in (``POST /api/v1/auth/login``)
for a token of their own. They start with no permissions.

Login only counts failures against its rate limit (``mcpd/services/ratelimit.py``), so tests
may log in as often as they like. Applying the same User again changes nothing, so calling
``add_person`` twice for one name gives that person a second token.

``add_person``/``add_user``/``log_in`` take the in-process client (``api`` of tests/conftest.py,
the admin's); ``add_person_live`` does the same against a live mcpd (``live_mcpd``), for CLI
tests. Tests that need a ``users`` row without its object (databases from before User was a
kind) write that row themselves.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import LiveMcpd

PASSWORD = "correct horse battery staple"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _user(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """User ``name``; the display name is the name unless ``spec`` says."""
    return {
        "apiVersion": "mcpctl/v1",
        "kind": "User",
        "metadata": {"name": name},
        "spec": {"displayName": name, **spec},
    }


def _login(name: str, password: str) -> dict[str, str]:
    return {"user": name, "password": password}


def _token_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


async def add_user(api: httpx.AsyncClient, name: str, **spec: Any) -> None:
    """Apply User ``name`` (``spec`` as given, e.g. ``password=``, ``disabled=True``) as the
    admin."""
    response = await api.put(f"/api/v1/users/{name}", json=_user(name, spec))
    assert response.is_success, response.text


async def log_in(api: httpx.AsyncClient, name: str, password: str = PASSWORD) -> str:
    """A new token of ``name``'s, from logging in with ``password``."""
    response = await api.post(
        "/api/v1/auth/login", json=_login(name, password), headers={"Authorization": ""}
    )
    return _token_of(response)


async def add_person(
    api: httpx.AsyncClient, name: str, *, password: str = PASSWORD, **spec: Any
) -> str:
    """User ``name`` with ``password`` (and ``spec``), and a new token of theirs."""
    await add_user(api, name, password=password, **spec)
    return await log_in(api, name, password)


def add_person_live(live: LiveMcpd, name: str, *, password: str = PASSWORD, **spec: Any) -> str:
    """``add_person`` against a live mcpd (for CLI tests)."""
    with httpx.Client(base_url=live.url, trust_env=False) as http:
        applied = http.put(
            f"/api/v1/users/{name}",
            json=_user(name, {"password": password, **spec}),
            headers=bearer(live.token),
        )
        assert applied.is_success, applied.text
        return _token_of(http.post("/api/v1/auth/login", json=_login(name, password)))
