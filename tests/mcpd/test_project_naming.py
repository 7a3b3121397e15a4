"""A project's status warns when ``toolPrefix: never`` lets names of its servers collide."""

from __future__ import annotations

import httpx
import pytest

from tests.mcpd.manifests import must_put, project, server

pytestmark = pytest.mark.anyio


async def test_plain_names_over_several_servers_are_warned_of_in_the_status(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, server("a"), server("b"))
    (one,) = await must_put(api, project("solo", ["a"], toolPrefix="never"))
    assert "warnings" not in one["status"]
    (prefixed,) = await must_put(api, project("both", ["a", "b"]))
    assert "warnings" not in prefixed["status"]

    (plain,) = await must_put(api, project("both", ["a", "b"], toolPrefix="never"))
    (warning,) = plain["status"]["warnings"]
    assert "toolPrefix: never with 2 servers" in warning
    assert "/projects/both/status" in warning
    shown = (await api.get("/api/v1/projects/both")).json()
    assert shown["status"]["warnings"] == [warning]

    (fixed,) = await must_put(api, project("both", ["a"], toolPrefix="never"))
    assert "warnings" not in fixed["status"]
