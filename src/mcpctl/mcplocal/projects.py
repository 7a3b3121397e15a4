"""Reading projects from mcpd: the servers a project endpoint aggregates, and how it names them.

An async httpx client of its own (not the CLI's ``McpdClient``): mcplocal follows projects
from the event loop (long-polls: ``GET ...?changedAfter=RV&waitSeconds=S``), and a blocking
client would need a thread per project.
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
    # metadata.resourceVersion: what to follow changes after (None: unknown).
    resource_version: str | None = None


class ProjectSource(Protocol):
    async def get(self, name: str) -> ProjectView:
        """The project as mcpd has it now.

        Raises:
            NotFound: no such project.
            Unauthenticated, PermissionDenied: the token does not allow it.
            Unavailable: mcpd cannot be reached.
        """
        ...

    async def follow(self, name: str, after: str | None, wait: float) -> ProjectView | None:
        """The project once it is at another resourceVersion than ``after``, waiting at most
        ``wait`` seconds for that; None when it did not change meanwhile. An mcpd that does
        not wait answers at once, perhaps at the same version.

        Raises:
            NotFound, Unauthenticated, PermissionDenied, Unavailable: as ``get``.
        """
        ...

    async def aclose(self) -> None: ...


def view_of(obj: dict[str, Any]) -> ProjectView:
    """Read leniently: mcplocal must keep working against a newer mcpd with more fields."""
    spec = obj.get("spec") or {}
    servers = tuple(str(s) for s in spec.get("servers") or [])
    version = obj["metadata"].get("resourceVersion")
    return ProjectView(
        name=str(obj["metadata"]["name"]),
        servers=servers,
        prefix=spec.get("toolPrefix", "always") != "never",
        resource_version=None if version is None else str(version),
    )


class McpdProjects:
    """Projects read from mcpd's REST API with the user's token."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 5.0) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)

    async def get(self, name: str) -> ProjectView:
        view = await self._read(name, {}, self.timeout)
        if view is None:
            raise AppError(f"mcpd answered 304 Not Modified to a plain GET of project {name!r}")
        return view

    async def follow(self, name: str, after: str | None, wait: float) -> ProjectView | None:
        if after is None:
            return await self.get(name)
        params = {"changedAfter": after, "waitSeconds": f"{wait:g}"}
        return await self._read(name, params, wait + self.timeout)

    async def _read(
        self, name: str, params: dict[str, str], read_timeout: float
    ) -> ProjectView | None:
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        try:
            resp = await self._http.get(
                f"/api/v1/projects/{quote(name, safe='')}", params=params, timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"cannot reach mcpd at {self.base_url} ({exc.__class__.__name__}: {exc})"
            ) from exc
        if resp.status_code == 304:
            return None
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
