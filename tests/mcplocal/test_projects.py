"""Following a served project in mcpd: long-polls, not rereads, and a project that goes and
comes back."""

from __future__ import annotations

import anyio
import httpx
import pytest

from mcpctl.client.http import McpdClient
from tests.conftest import LiveMcpd
from tests.mcplocal.conftest import apply_project, connect, serve_mcplocal, wait_listening

pytestmark = pytest.mark.anyio

PROJECT_CHANGE_BOUND = 2.0  # DESIGN.md: project changes reach connected clients within 2 s
TOOLS_CHANGED = "notifications/tools/list_changed"
PROJECT_ROUTE = 'mcpd_http_requests_total{method="GET",route="/api/v1/projects/{name}"'


def project_gets(mcpd: LiveMcpd) -> float:
    """How many GETs of one project mcpd has answered, whatever their status (its metrics)."""
    auth = {"Authorization": f"Bearer {mcpd.token}"}
    metrics = httpx.get(f"{mcpd.url}/metrics", headers=auth, trust_env=False).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(PROJECT_ROUTE)
    )


async def test_an_idle_served_project_costs_mcpd_one_get_per_wait(live_mcpd: LiveMcpd) -> None:
    apply_project(live_mcpd, "idle", [])
    async with (
        serve_mcplocal(live_mcpd, project_wait_seconds=1.5) as served,
        connect(served.url("idle")) as (client, _),
    ):
        await client.list_tools()
        before = project_gets(live_mcpd)
        await anyio.sleep(3.0)  # the window measured, not a wait for something
        after = project_gets(live_mcpd)

    # Rereading every 0.5 s made 6; each long-poll waits 1.5 s, so 2 end in 3 s (3 at most).
    assert after - before <= 3


async def test_a_deleted_project_serves_nothing_until_it_is_created_again(
    live_mcpd: LiveMcpd, time_server: str
) -> None:
    apply_project(live_mcpd, "fleeting", ["time"])
    async with (
        serve_mcplocal(live_mcpd) as served,
        connect(served.url("fleeting")) as (client, notes),
    ):
        assert (await client.list_tools()).tools
        await wait_listening(served, "fleeting")

        before = notes.counts.get(TOOLS_CHANGED, 0)
        with McpdClient(live_mcpd.url, live_mcpd.token) as mcpd:
            mcpd.delete_object("projects", "fleeting")
        await notes.wait_for(TOOLS_CHANGED, before, PROJECT_CHANGE_BOUND)
        assert (await client.list_tools()).tools == []
        endpoint = served.state.endpoints.opened("fleeting")
        assert endpoint is not None
        assert "not in mcpd any more" in (endpoint.runtime.status()["problem"] or "")

        before = notes.counts.get(TOOLS_CHANGED, 0)
        apply_project(live_mcpd, "fleeting", ["time"])
        await notes.wait_for(TOOLS_CHANGED, before, PROJECT_CHANGE_BOUND)
        assert {t.name for t in (await client.list_tools()).tools} == {
            "time__get_current_time",
            "time__convert_time",
        }
        assert endpoint.runtime.status()["problem"] is None
