"""`GET /api/v1/instances`, `POST /api/v1/servers/{name}/restart` and
`GET /api/v1/servers/{name}/logs` on both engines, with their permissions."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import LiveMcpd
from tests.mcpd.instances.running import TIME_SERVER, fixture_args
from tests.mcpd.manifests import manifest, put
from tests.mcpd.test_rbac import grant
from tests.people import add_person, bearer

pytestmark = pytest.mark.anyio


async def add_time_server(api: httpx.AsyncClient, name: str = "time") -> None:
    response = await put(api, manifest("Server", name, {"command": TIME_SERVER}))
    assert response.is_success, response.text


async def test_instances_list_is_empty_until_a_server_runs(api: httpx.AsyncClient) -> None:
    await add_time_server(api)

    response = await api.get("/api/v1/instances")

    assert response.status_code == 200
    assert response.json() == {"apiVersion": "mcpctl/v1", "kind": "InstanceList", "items": []}


async def test_restart_starts_the_server_and_the_instance_shows_in_the_list(
    api: httpx.AsyncClient,
) -> None:
    await add_time_server(api)

    restarted = await api.post("/api/v1/servers/time/restart")
    listed = await api.get("/api/v1/instances")
    one = await api.get("/api/v1/instances/time")

    assert restarted.status_code == 200, restarted.text
    instance = restarted.json()
    assert instance["kind"] == "Instance"
    assert instance["spec"] == {
        "server": "time",
        "runtime": "process",
        "transport": "stdio",
        "keepAlive": False,
    }
    assert instance["status"]["state"] == "Running"
    assert instance["status"]["pid"] > 0
    assert instance["status"]["serverInfo"]["name"] == "mcp-time"
    assert [i["metadata"]["name"] for i in listed.json()["items"]] == ["time"]
    assert one.json()["status"]["pid"] == instance["status"]["pid"]


async def test_restarting_twice_replaces_the_process(api: httpx.AsyncClient) -> None:
    await add_time_server(api)

    first = (await api.post("/api/v1/servers/time/restart")).json()["status"]["pid"]
    second = (await api.post("/api/v1/servers/time/restart")).json()["status"]["pid"]

    assert first != second


async def test_unknown_servers_and_instances_are_404(api: httpx.AsyncClient) -> None:
    await add_time_server(api)

    restart = await api.post("/api/v1/servers/nope/restart")
    logs = await api.get("/api/v1/servers/nope/logs")
    instance = await api.get("/api/v1/instances/time")

    assert [restart.status_code, logs.status_code, instance.status_code] == [404, 404, 404]
    assert restart.json()["code"] == "not_found"
    assert "starts on first use" in instance.json()["detail"]


async def test_a_server_that_cannot_start_answers_503_with_the_reason(
    api: httpx.AsyncClient,
) -> None:
    body = manifest("Server", "broken", {"command": "/nonexistent/server"})
    assert (await put(api, body)).is_success

    response = await api.post("/api/v1/servers/broken/restart")

    assert response.status_code == 503
    assert "cannot start '/nonexistent/server'" in response.json()["detail"]


async def test_logs_hold_lifecycle_events_and_stderr_and_tail_limits_them(
    api: httpx.AsyncClient,
) -> None:
    argv = fixture_args("--say", "hello from stderr")
    body = manifest("Server", "fx", {"command": argv[0], "args": argv[1:]})
    assert (await put(api, body)).is_success
    await api.post("/api/v1/servers/fx/restart")

    full = await api.get("/api/v1/servers/fx/logs")
    tail = await api.get("/api/v1/servers/fx/logs", params={"tail": 1})

    assert full.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in full.text.splitlines()]
    assert [(x["stream"], x["text"].split(" (")[0]) for x in lines] == [
        ("event", "restart requested by admin"),
        ("event", "starting"),
        ("stderr", "hello from stderr"),
        ("event", "running"),
    ]
    assert [json.loads(line)["text"] for line in tail.text.splitlines()] == [lines[-1]["text"]]
    assert lines[0]["time"].endswith("Z")


def test_follow_streams_new_lines_as_they_come(live_mcpd: LiveMcpd) -> None:
    # Over a real socket: the in-process transport buffers whole responses.
    headers = {"Authorization": f"Bearer {live_mcpd.token}"}
    with httpx.Client(base_url=live_mcpd.url, headers=headers, timeout=30) as client:
        body = manifest("Server", "time", {"command": TIME_SERVER})
        assert client.put("/api/v1/servers/time", json=body).is_success
        seen: list[str] = []
        params = {"follow": "true", "tail": "0"}
        with client.stream("GET", "/api/v1/servers/time/logs", params=params) as response:
            with httpx.Client(base_url=live_mcpd.url, headers=headers, timeout=30) as other:
                assert other.post("/api/v1/servers/time/restart").is_success
            for line in response.iter_lines():
                seen.append(json.loads(line)["text"])
                if seen[-1].startswith("running"):
                    break

    assert seen[0] == "restart requested by admin"
    assert seen[-1].startswith("running (pid ")


async def test_permissions_view_for_instances_run_for_restart_logs_operation_for_logs(
    api: httpx.AsyncClient,
) -> None:
    await add_time_server(api)
    await add_time_server(api, "other")
    await api.post("/api/v1/servers/time/restart")
    await api.post("/api/v1/servers/other/restart")
    alice = bearer(await add_person(api, "alice"))

    await grant(api, [{"role": "view", "resource": "servers", "name": "time"}])
    only_time = await api.get("/api/v1/instances", headers=alice)
    no_restart = await api.post("/api/v1/servers/time/restart", headers=alice)
    no_logs = await api.get("/api/v1/servers/time/logs", headers=alice)
    await grant(
        api,
        [{"role": "run", "resource": "servers", "name": "time"}, {"role": "run", "action": "logs"}],
    )
    restart = await api.post("/api/v1/servers/time/restart", headers=alice)
    logs = await api.get("/api/v1/servers/time/logs", headers=alice)

    assert [i["metadata"]["name"] for i in only_time.json()["items"]] == ["time"]
    assert [no_restart.status_code, no_logs.status_code] == [403, 403]
    assert [restart.status_code, logs.status_code] == [200, 200]
    assert "restart requested by alice" in logs.text


async def test_a_restart_is_audited(app: FastAPI, api: httpx.AsyncClient) -> None:
    from tests.conftest import state_of

    await add_time_server(api)
    await api.post("/api/v1/servers/time/restart")
    await state_of(app).audit.flush()

    events = (await api.get("/api/v1/auditevents", params={"kind": "Server"})).json()["items"]

    assert (events[0]["verb"], events[0]["name"], events[0]["outcome"]) == (
        "restart",
        "time",
        "ok",
    )
