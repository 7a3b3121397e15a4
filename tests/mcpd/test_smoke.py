from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_healthz_needs_no_token(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_apply_twice_reports_unchanged(api: httpx.AsyncClient) -> None:
    body = {
        "apiVersion": "mcpctl/v1",
        "kind": "Server",
        "metadata": {"name": "time"},
        "spec": {"command": "uvx", "args": ["mcp-server-time"]},
    }
    first = await api.put("/api/v1/servers/time", json=body)
    second = await api.put("/api/v1/servers/time", json=body)
    assert (first.status_code, first.json()["outcome"]) == (201, "created")
    assert (second.status_code, second.json()["outcome"]) == (200, "unchanged")
