"""Bearer tokens on every route, the bootstrap admin token, password login and whoami."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from mcpctl.mcpd.app import create_app
from mcpctl.mcpd.settings import Settings
from tests.mcpd.manifests import server
from tests.mcpd.running import admin_token, running

pytestmark = pytest.mark.anyio

OPEN_ROUTES = {"/healthz", "/api/v1/auth/login"}


def routes_needing_a_token(app: FastAPI) -> list[tuple[str, str]]:
    """Every documented operation, and the OpenAPI document itself (which is not documented)."""
    out = [("GET", "/openapi.json")]
    for template, operations in app.openapi()["paths"].items():
        if template in OPEN_ROUTES:
            continue
        path = re.sub(r"\{[^}]+\}", "time", template)
        out.extend((method.upper(), path) for method in sorted(operations))
    return out


def with_password(settings: Settings, password: str) -> Settings:
    return settings.model_copy(update={"admin_password": SecretStr(password)})


async def test_every_route_but_healthz_and_login_answers_401_without_a_valid_token(
    app: FastAPI, api: httpx.AsyncClient, settings: Settings
) -> None:
    routes = routes_needing_a_token(create_app(settings))
    assert ("GET", "/metrics") in routes
    assert ("GET", "/openapi.json") in routes
    assert ("PUT", "/api/v1/servers/time") in routes
    bad_headers = [
        {},
        {"Authorization": "Bearer mcpctl_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {api.headers['Authorization'].split()[1]}"},
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://mcpd.test"
    ) as anonymous:
        for method, path in routes:
            for headers in bad_headers:
                body = server("time") if method in ("POST", "PUT") else None
                response = await anonymous.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.json()["code"] == "unauthenticated"
    assert (await api.get("/api/v1/servers/time")).status_code == 404


async def test_healthz_metrics_and_openapi_answer_with_a_token(api: httpx.AsyncClient) -> None:
    health = await api.get("/healthz")
    metrics = await api.get("/metrics")
    openapi = await api.get("/openapi.json")

    assert health.json() == {"status": "ok"}
    assert metrics.status_code == 200
    assert "mcpd_http_requests_total" in metrics.text
    assert openapi.status_code == 200
    assert "/api/v1/servers/{name}" in openapi.json()["paths"]


async def test_metrics_count_requests_per_route_template(api: httpx.AsyncClient) -> None:
    await api.get("/api/v1/servers/one")
    await api.get("/api/v1/servers/two")

    text = (await api.get("/metrics")).text

    assert 'route="/api/v1/servers/{name}",status="404"' in text
    assert "/api/v1/servers/one" not in text


async def test_whoami_names_the_admin(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/auth/whoami")

    assert response.status_code == 200
    assert response.json() == {"user": "admin", "admin": True}


async def test_admin_token_file_is_mode_0600_and_written_at_first_start_only(
    settings: Settings,
) -> None:
    async with running(settings) as api:
        assert (await api.get("/api/v1/auth/whoami")).status_code == 200
    token_file = settings.data_dir / "admin.token"
    first = token_file.read_text()
    first_stat = token_file.stat()
    assert first_stat.st_mode & 0o777 == 0o600
    assert first.startswith("mcpctl_")

    async with running(settings) as api:
        assert (await api.get("/api/v1/auth/whoami")).status_code == 200
    assert token_file.read_text() == first
    assert token_file.stat().st_mtime_ns == first_stat.st_mtime_ns

    token_file.unlink()
    async with running(settings, token=first.strip()) as api:
        assert (await api.get("/api/v1/auth/whoami")).json()["user"] == "admin"
    assert not token_file.exists()


async def test_login_with_the_admin_password_gives_a_working_token(settings: Settings) -> None:
    async with running(with_password(settings, "pa55word")) as api:
        response = await api.post(
            "/api/v1/auth/login",
            json={"user": "admin", "password": "pa55word"},
            headers={"Authorization": ""},
        )
        token = response.json()["token"]
        whoami = await api.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json()["user"] == "admin"
    assert token != admin_token(settings)
    assert whoami.json() == {"user": "admin", "admin": True}


async def test_login_with_a_wrong_password_or_user_is_401(settings: Settings) -> None:
    async with running(with_password(settings, "pa55word")) as api:
        answers = [
            await api.post("/api/v1/auth/login", json={"user": user, "password": password})
            for user, password in [("admin", "wrong"), ("nobody", "pa55word"), ("admin", "")]
        ]

    for response in answers:
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"
        assert "token" not in response.json()


async def test_login_is_refused_when_no_admin_password_is_set(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/auth/login", json={"user": "admin", "password": ""})

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


async def test_a_new_admin_password_replaces_the_old_one_at_the_next_start(
    settings: Settings,
) -> None:
    async with running(with_password(settings, "first-pass")):
        pass

    async with running(with_password(settings, "second-pass")) as api:
        old = await api.post("/api/v1/auth/login", json={"user": "admin", "password": "first-pass"})
        new = await api.post(
            "/api/v1/auth/login", json={"user": "admin", "password": "second-pass"}
        )

    assert old.status_code == 401
    assert new.status_code == 200


async def test_login_body_with_unknown_fields_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/auth/login", json={"user": "admin", "password": "x", "otp": "1"}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert [e["path"] for e in response.json()["errors"]] == ["otp"]
