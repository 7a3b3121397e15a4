"""Reading projects from mcpd: the servers a project endpoint aggregates, and how it names them.

An async httpx client of its own (not the CLI's ``McpdClient``): mcplocal polls projects from
the event loop, and a blocking client would need a thread per poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from mcpctl.errors import AppError, Unavailable, from_problem


@dataclass(frozen=True)
class ProjectView:
    """What mcplocal needs of a Project: its servers in order, and whether names get a prefix."""

    name: str
    servers: tuple[str, ...]
    prefix: bool = True


class ProjectSource(Protocol):
    async def get(self, name: str) -> ProjectView:
        """The project as mcpd has it now.

        Raises:
            NotFound: no such project.
            Unauthenticated, PermissionDenied: the token does not allow it.
            Unavailable: mcpd cannot be reached.
        """
        ...

    async def aclose(self) -> None: ...


def view_of(obj: dict[str, Any]) -> ProjectView:
    """Read leniently: mcplocal must keep working against a newer mcpd with more fields."""
    spec = obj.get("spec") or {}
    servers = tuple(str(s) for s in spec.get("servers") or [])
    return ProjectView(
        name=str(obj["metadata"]["name"]),
        servers=servers,
        prefix=spec.get("toolPrefix", "always") != "never",
    )


class McpdProjects:
    """Projects read from mcpd's REST API with the user's token."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 5.0) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)

    async def get(self, name: str) -> ProjectView:
        try:
            resp = await self._http.get(f"/api/v1/projects/{quote(name, safe='')}")
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"cannot reach mcpd at {self.base_url} ({exc.__class__.__name__}: {exc})"
            ) from exc
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        if resp.status_code >= 400:
            if isinstance(payload, dict) and "code" in payload:
                raise from_problem(payload, resp.status_code)
            raise AppError(f"mcpd answered HTTP {resp.status_code} for project {name!r}")
        if not isinstance(payload, dict):
            raise AppError(f"mcpd answered something that is not a project for {name!r}")
        return view_of(payload)

    async def aclose(self) -> None:
        await self._http.aclose()
