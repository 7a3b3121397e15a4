"""Listing: label selectors as kubectl writes them, and chunked pages with continue tokens."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.mcpd.manifests import error_paths, must_put, server

pytestmark = pytest.mark.anyio

LABELLED = {
    "a": {"team": "infra", "tier": "1"},
    "b": {"team": "web", "tier": "2"},
    "c": {"team": "data"},
    "d": {},
}

SELECTIONS = [
    ("team=infra", ["a"]),
    ("team==web", ["b"]),
    ("team!=infra", ["b", "c", "d"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c", "d"]),
    ("team in (infra, data)", ["a", "c"]),
    ("team notin (infra,data)", ["b", "d"]),
    ("team,tier=2", ["b"]),
    ("team in (web,data),!tier", ["c"]),
    ("team=nobody", []),
    ("", ["a", "b", "c", "d"]),
]


async def names(api: httpx.AsyncClient, **params: str | int) -> list[str]:
    response = await api.get("/api/v1/servers", params=params)
    assert response.status_code == 200, response.text
    return [o["metadata"]["name"] for o in response.json()["items"]]


async def test_label_selectors_select_what_kubectl_would(api: httpx.AsyncClient) -> None:
    await must_put(api, *(server(name, labels=labels) for name, labels in LABELLED.items()))

    for selector, expected in SELECTIONS:
        assert await names(api, labelSelector=selector) == expected, selector


async def test_a_bad_selector_is_422(api: httpx.AsyncClient) -> None:
    for selector in ["=infra", "team in infra", "team in (a b)", "Bad Key", "team=a=b", "!"]:
        response = await api.get("/api/v1/servers", params={"labelSelector": selector})

        assert response.status_code == 422, selector
        assert response.json()["code"] == "invalid_input"


async def test_an_empty_value_selects_labels_with_an_empty_value(api: httpx.AsyncClient) -> None:
    await must_put(api, server("a", labels={"team": ""}), server("b", labels={"team": "web"}))

    assert await names(api, labelSelector="team=") == ["a"]


async def test_pages_return_every_object_exactly_once_in_name_order(
    api: httpx.AsyncClient,
) -> None:
    wanted = sorted(f"srv-{i:02d}" for i in range(11))
    await must_put(api, *(server(name) for name in reversed(wanted)))

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 4}
        if token:
            params["continue"] = token
        body = (await api.get("/api/v1/servers", params=params)).json()
        pages += 1
        assert len(body["items"]) <= 4
        seen.extend(o["metadata"]["name"] for o in body["items"])
        token = body["metadata"].get("continue")
        if token is None:
            break

    assert seen == wanted
    assert pages == 3


async def test_a_page_that_ends_exactly_at_the_last_object_has_no_continue(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, server("a"), server("b"))

    body = (await api.get("/api/v1/servers", params={"limit": 2})).json()

    assert [o["metadata"]["name"] for o in body["items"]] == ["a", "b"]
    assert body["metadata"] == {}


async def test_pages_combine_with_a_selector(api: httpx.AsyncClient) -> None:
    await must_put(
        api, *(server(f"s{i}", labels={"even": str(i % 2 == 0).lower()}) for i in range(6))
    )

    first = await api.get("/api/v1/servers", params={"labelSelector": "even=true", "limit": 2})
    token = first.json()["metadata"]["continue"]
    second = await api.get(
        "/api/v1/servers", params={"labelSelector": "even=true", "limit": 2, "continue": token}
    )

    assert [o["metadata"]["name"] for o in first.json()["items"]] == ["s0", "s2"]
    assert [o["metadata"]["name"] for o in second.json()["items"]] == ["s4"]
    assert "continue" not in second.json()["metadata"]


async def test_objects_deleted_between_pages_do_not_break_the_walk(
    api: httpx.AsyncClient,
) -> None:
    await must_put(api, *(server(n) for n in "abcde"))
    first = (await api.get("/api/v1/servers", params={"limit": 2})).json()

    await api.delete("/api/v1/servers/b")
    await api.delete("/api/v1/servers/c")
    rest = await names(api, limit=10, **{"continue": first["metadata"]["continue"]})

    assert [o["metadata"]["name"] for o in first["items"]] == ["a", "b"]
    assert rest == ["d", "e"]


BAD_TOKENS = [
    "not-a-token!",
    base64.urlsafe_b64encode(b"[1, 2]").decode(),
    base64.urlsafe_b64encode(b'{"after": 3}').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
]


async def test_a_bad_continue_token_is_422(api: httpx.AsyncClient) -> None:
    for token in BAD_TOKENS:
        response = await api.get("/api/v1/servers", params={"continue": token, "limit": 1})

        assert response.status_code == 422, token
        assert response.json()["code"] == "invalid_input"
        assert error_paths(response) == ["continue"]


async def test_a_bad_limit_is_422(api: httpx.AsyncClient) -> None:
    for limit in ["0", "501", "-1", "many"]:
        response = await api.get("/api/v1/servers", params={"limit": limit})

        assert response.status_code == 422, limit
        assert error_paths(response) == ["limit"]
