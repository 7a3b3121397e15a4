"""Small builders for resource manifests as the REST API takes them."""

from __future__ import annotations

from typing import Any

import httpx

from mcpctl.resources.kinds import by_kind

JSON = dict[str, Any]


def manifest(kind: str, name: str, spec: JSON, labels: dict[str, str] | None = None) -> JSON:
    metadata: JSON = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "mcpctl/v1", "kind": kind, "metadata": metadata, "spec": spec}


def server(name: str, labels: dict[str, str] | None = None, **spec: Any) -> JSON:
    if "fromTemplate" not in spec:
        spec.setdefault("command", "uvx")
    return manifest("Server", name, spec, labels)


def secret(name: str, data: dict[str, str | None], labels: dict[str, str] | None = None) -> JSON:
    return manifest("Secret", name, {"data": data}, labels)


def template(name: str, **spec: Any) -> JSON:
    return manifest("Template", name, spec)


def project(name: str, servers: list[str], **spec: Any) -> JSON:
    return manifest("Project", name, {"servers": servers, **spec})


def prompt(name: str, project_name: str | None = None, content: str = "Be brief.") -> JSON:
    spec: JSON = {"content": content}
    if project_name is not None:
        spec["project"] = project_name
    return manifest("Prompt", name, spec)


def secret_env(env_name: str, secret_name: str, key: str) -> JSON:
    return {"name": env_name, "valueFrom": {"secretRef": {"name": secret_name, "key": key}}}


def url_of(body: JSON) -> str:
    return f"/api/v1/{by_kind(body['kind']).plural}/{body['metadata']['name']}"


def collection_of(kind: str) -> str:
    return f"/api/v1/{by_kind(kind).plural}"


async def put(api: httpx.AsyncClient, body: JSON, **params: Any) -> httpx.Response:
    return await api.put(url_of(body), json=body, params=params)


async def must_put(api: httpx.AsyncClient, *bodies: JSON) -> list[JSON]:
    """Apply each body and fail loudly unless it was accepted; return the stored objects."""
    out = []
    for body in bodies:
        response = await put(api, body)
        assert response.status_code in (200, 201), response.text
        out.append(response.json()["object"])
    return out


def error_paths(response: httpx.Response) -> list[str]:
    return [e["path"] for e in response.json().get("errors", [])]
