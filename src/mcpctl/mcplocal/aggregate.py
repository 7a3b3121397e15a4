"""One project's servers seen as one MCP server: merged, namespaced, cached lists, and routing.

Lists are served from a cached ``View`` rebuilt whenever an upstream connects, goes down, or
reports a change, so ``tools/list`` costs no upstream round trip once the upstreams are up; each
list's answer is encoded once per view (``View.encoded``), so serving it is a copy of bytes.
Tools and prompts are named ``{server}__{name}`` (``domain/naming.py``; plain names with
``toolPrefix: never``). Resources and templates keep their URIs, which tool results refer to;
their ``name`` is namespaced for display, and reads are routed by URI (listed resources first,
then the templates' patterns). Items stay the JSON objects the servers sent, with only the
name changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

from mcpctl.domain.naming import SEPARATOR, NameMap, Origin, exposed_name
from mcpctl.errors import AppError, InvalidInput, NotFound
from mcpctl.jsonrpc import protocol
from mcpctl.jsonrpc.asks import Tie
from mcpctl.jsonrpc.protocol import JsonObject, encode
from mcpctl.mcplocal.projects import ProjectView
from mcpctl.mcplocal.upstreams import (
    HttpPools,
    Kind,
    Locator,
    ProgressSink,
    Timeouts,
    Upstream,
    describe,
)

log = logging.getLogger(__name__)

OnChange = Callable[[frozenset[Kind]], Awaitable[None]]
OnResourceUpdated = Callable[[str, JsonObject], Awaitable[None]]
OnLog = Callable[[str, JsonObject], Awaitable[None]]  # (server, notifications/message params)
_RESULT_KEYS: dict[Kind, str] = {
    "tools": "tools",
    "prompts": "prompts",
    "resources": "resources",
    "templates": "resourceTemplates",
}


@dataclass(frozen=True)
class View:
    """The merged lists of the ready upstreams, and how to route each exposed name back."""

    tools: tuple[JsonObject, ...] = ()
    prompts: tuple[JsonObject, ...] = ()
    resources: tuple[JsonObject, ...] = ()
    templates: tuple[JsonObject, ...] = ()
    tool_names: NameMap = field(default_factory=NameMap)
    prompt_names: NameMap = field(default_factory=NameMap)
    resource_servers: Mapping[str, str] = field(default_factory=dict)
    template_servers: tuple[tuple[str, UriTemplate | None, str], ...] = ()
    problems: tuple[str, ...] = ()

    def of(self, kind: Kind) -> tuple[JsonObject, ...]:
        lists: dict[Kind, tuple[JsonObject, ...]] = {
            "tools": self.tools,
            "prompts": self.prompts,
            "resources": self.resources,
            "templates": self.templates,
        }
        return lists[kind]

    def encoded(self, kind: Kind) -> bytes:
        """The list result of ``kind`` as JSON, encoded once per view."""
        return self._encoded[kind]

    @cached_property
    def _encoded(self) -> dict[Kind, bytes]:
        return {kind: encode({key: list(self.of(kind))}) for kind, key in _RESULT_KEYS.items()}

    @cached_property
    def schemas(self) -> dict[str, Any]:
        """Each exposed tool's input schema, by exposed name."""
        return {tool["name"]: tool.get("inputSchema") for tool in self.tools}


def _collision_problems(what: str, names: NameMap) -> list[str]:
    return [
        f"{what} {exposed!r} is offered by {held.server} and {other.server}; "
        f"only {held.server}'s is listed"
        for exposed, held, other in names.collisions
    ]


def _named(item: JsonObject) -> str | None:
    name = item.get("name")
    return name if isinstance(name, str) else None


def build_view(upstreams: Iterable[Upstream], prefix: bool) -> View:
    """Merge the lists of the ready upstreams, in the project's order of servers."""
    tool_names, prompt_names = NameMap(prefix=prefix), NameMap(prefix=prefix)
    tools: list[JsonObject] = []
    prompts: list[JsonObject] = []
    resources: list[JsonObject] = []
    templates: list[JsonObject] = []
    resource_servers: dict[str, str] = {}
    template_servers: list[tuple[str, UriTemplate | None, str]] = []
    problems: list[str] = []
    for up in upstreams:
        if up.state != "ready":
            continue
        server, listing = up.server, up.listing
        for tool in listing.tools:
            original = _named(tool)
            if original is not None and (name := tool_names.add(server, original)) is not None:
                tools.append({**tool, "name": name})
        for prompt in listing.prompts:
            original = _named(prompt)
            if original is not None and (name := prompt_names.add(server, original)) is not None:
                prompts.append({**prompt, "name": name})
        for resource in listing.resources:
            uri = resource.get("uri")
            if not isinstance(uri, str):
                continue
            held = resource_servers.setdefault(uri, server)
            if held != server:
                problems.append(f"resource {uri!r} is offered by {held} and {server}")
                continue
            label = exposed_name(server if prefix else None, _named(resource) or uri)
            resources.append({**resource, "name": label})
        for template in listing.templates:
            pattern = template.get("uriTemplate")
            if not isinstance(pattern, str):
                continue
            label = exposed_name(server if prefix else None, _named(template) or pattern)
            templates.append({**template, "name": label})
            template_servers.append((pattern, _parse(pattern), server))
    problems += _collision_problems("tool", tool_names) + _collision_problems(
        "prompt", prompt_names
    )
    return View(
        tools=tuple(tools),
        prompts=tuple(prompts),
        resources=tuple(resources),
        templates=tuple(templates),
        tool_names=tool_names,
        prompt_names=prompt_names,
        resource_servers=resource_servers,
        template_servers=tuple(template_servers),
        problems=tuple(problems),
    )


def _parse(template: str) -> UriTemplate | None:
    try:
        return UriTemplate.parse(template)
    except InvalidUriTemplate:
        return None


def forwarded_meta(meta: object) -> dict[str, Any] | None:
    """The client's ``_meta`` minus what belongs to its own hop (progress token, session keys)."""
    if not isinstance(meta, dict) or not meta:
        return None
    kept = {
        k: v
        for k, v in meta.items()
        if k not in ("progress_token", "progressToken")
        and not k.startswith("io.modelcontextprotocol/")
    }
    return kept or None


def _forwarded(params: JsonObject, **changes: Any) -> JsonObject:
    """``params`` for the upstream: ``changes`` applied, the client's own ``_meta`` keys gone."""
    out = {k: v for k, v in params.items() if k != "_meta"}
    out.update(changes)
    if (meta := forwarded_meta(params.get("_meta"))) is not None:
        out["_meta"] = meta
    return out


def _text(params: JsonObject, key: str) -> str:
    """Raises: InvalidInput naming ``params.key`` when it is not a string."""
    value = params.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"params.{key}: must be a string")
    return value


class Aggregator:
    """The upstreams of one project, their merged view, and the routing of requests."""

    def __init__(
        self,
        project: str,
        *,
        locator: Locator,
        timeouts: Timeouts,
        list_wait: float,
        tg: TaskGroup,
        on_change: OnChange,
        pools: HttpPools,
        on_resource_updated: OnResourceUpdated | None = None,
        on_log: OnLog | None = None,
    ) -> None:
        self.project = project
        self.locator = locator
        self.timeouts = timeouts
        self.list_wait = list_wait
        self.prefix = True
        self.view = View()
        self._tg = tg
        self._on_change = on_change
        self._on_resource_updated = on_resource_updated
        self._on_log = on_log
        self._pools = pools
        self._upstreams: dict[str, Upstream] = {}
        self._active = False
        self._reported: set[str] = set()
        self._slow: set[str] = set()
        # What clients were last given of each kind: a change is only news against that
        # (an upstream that connects during a client's first list is in that list already).
        self._served: dict[Kind, tuple[Any, ...]] = {}

    @property
    def upstreams(self) -> list[Upstream]:
        return list(self._upstreams.values())

    # -- the project's servers ---------------------------------------------------------

    async def set_project(self, project: ProjectView) -> bool:
        """Follow the project's servers and naming; returns whether anything changed."""
        changed = project.prefix != self.prefix or tuple(self._upstreams) != project.servers
        self.prefix = project.prefix
        kept: dict[str, Upstream] = {}
        for server in project.servers:
            up = self._upstreams.pop(server, None)
            if up is None:
                up = Upstream(
                    f"project {self.project}, server {server}",
                    server,
                    self.locator(server),
                    self.timeouts,
                    self._upstream_changed,
                    pools=self._pools,
                    on_resource_updated=self._on_resource_updated,
                    on_log=self._on_log,
                )
                if self._active:
                    up.start(self._tg)
            kept[server] = up
        removed, self._upstreams = list(self._upstreams.values()), kept
        for up in removed:
            self._tg.start_soon(up.aclose)
        if changed:
            await self._rebuild(force=True)
        return changed

    def start(self) -> None:
        """Connect every upstream (in parallel, in the background); the first use does this."""
        self._active = True
        for up in self._upstreams.values():
            up.start(self._tg)

    async def aclose(self) -> None:
        async with anyio.create_task_group() as tg:
            for up in self._upstreams.values():
                tg.start_soon(up.aclose)

    async def settle(self) -> None:
        """Start the upstreams, and wait (at most ``list_wait``) for those still connecting."""
        self.start()
        pending = [up for up in self._upstreams.values() if up.state == "connecting"]
        if not pending:
            return
        with anyio.move_on_after(self.list_wait):
            async with anyio.create_task_group() as tg:
                for up in pending:
                    tg.start_soon(up.wait_settled)
        for up in pending:
            if up.state == "connecting" and up.server not in self._slow:
                self._slow.add(up.server)
                log.warning(
                    "project %s, server %s: no answer within %.1f s; its tools are left out "
                    "until it answers",
                    self.project,
                    up.server,
                    self.list_wait,
                )

    async def _upstream_changed(self, up: Upstream) -> None:
        if up.state != "connecting":
            self._slow.discard(up.server)
        if self._upstreams.get(up.server) is up:
            await self._rebuild()

    async def _rebuild(self, *, force: bool = False) -> None:
        view = build_view(self._upstreams.values(), self.prefix)
        self.view = view
        kinds = frozenset(k for k, served in self._served.items() if view.of(k) != served)
        for problem in view.problems:
            if problem not in self._reported:
                log.warning("project %s: %s", self.project, problem)
        self._reported = set(view.problems)
        if force:
            kinds = frozenset({"tools", "prompts", "resources", "templates"})
        if kinds:
            await self._on_change(kinds)

    # -- routing -----------------------------------------------------------------------

    def _route(self, names: NameMap, name: str, what: str) -> tuple[Upstream, str]:
        origin = names.resolve(name)
        if origin is None and self.prefix and SEPARATOR in name:
            # Not listed now (its server may be down): route by the prefix so the caller
            # learns why, instead of "unknown tool".
            server, _, rest = name.partition(SEPARATOR)
            up = self._upstreams.get(server)
            if up is not None and up.state != "ready":
                origin = Origin(server, rest)
        if origin is None or origin.server not in self._upstreams:
            raise NotFound(f"project {self.project!r} has no {what} {name!r}")
        return self._upstreams[origin.server], origin.name

    async def _resolve(
        self, names: Callable[[], NameMap], name: str, what: str
    ) -> tuple[Upstream, str]:
        self.start()
        if names().resolve(name) is None:
            # Not listed (yet): wait for the upstreams still connecting, as a list would.
            await self.settle()
        return self._route(names(), name, what)

    def _route_uri(self, uri: str) -> Upstream:
        server = self.view.resource_servers.get(uri)
        if server is None:
            for text, template, owner in self.view.template_servers:
                if text == uri or (template is not None and template.match(uri) is not None):
                    server = owner
                    break
        if server is None:
            offering = [u.server for u in self._upstreams.values() if u.listing.resources]
            if len(offering) == 1:
                server = offering[0]
        if server is None or server not in self._upstreams:
            raise NotFound(f"project {self.project!r} has no resource {uri!r}")
        return self._upstreams[server]

    # -- requests ----------------------------------------------------------------------

    async def listed(self, kind: Kind) -> bytes:
        """The list result of ``kind``, encoded (upstreams still connecting are waited for)."""
        await self.settle()
        view = self.view
        self._served[kind] = view.of(kind)
        return view.encoded(kind)

    def tool_input_schema(self, name: str) -> Any:
        """From the cache: the 2026-07-28 transport validates calls with it."""
        return self.view.schemas.get(name)

    async def call_tool(
        self, params: JsonObject, progress: ProgressSink | None, tie: Tie | None = None
    ) -> JsonObject:
        """Raises: InvalidInput, NotFound (unknown tool), Unavailable, RpcError (the server's).

        With a ``tie``, the server's requests of the client while the call runs reach the
        tied client session (``jsonrpc/asks.py``)."""
        name = _text(params, "name")
        up, original = await self._resolve(lambda: self.view.tool_names, name, "tool")
        return await up.request(
            "tools/call",
            _forwarded(params, name=original),
            read_timeout=self.timeouts.call,
            progress=progress,
            tie=tie,
        )

    async def call_tool_result(
        self, params: JsonObject, progress: ProgressSink | None, tie: Tie | None = None
    ) -> JsonObject:
        """``call_tool`` for a client: a failure that is not the caller's fault (unavailable,
        denied) is a tool result with ``isError`` the model can read.

        Raises: InvalidInput, NotFound (unknown tool), RpcError (the server's)."""
        try:
            return await self.call_tool(params, progress, tie)
        except (InvalidInput, NotFound):
            raise
        except AppError as exc:
            return protocol.tool_error(exc)

    async def get_prompt(self, params: JsonObject, tie: Tie | None = None) -> JsonObject:
        name = _text(params, "name")
        up, original = await self._resolve(lambda: self.view.prompt_names, name, "prompt")
        return await up.request(
            "prompts/get",
            _forwarded(params, name=original),
            read_timeout=self.timeouts.request,
            tie=tie,
        )

    async def _upstream_of_uri(self, uri: str) -> Upstream:
        self.start()
        try:
            return self._route_uri(uri)
        except NotFound:
            await self.settle()
            return self._route_uri(uri)

    async def read_resource(self, params: JsonObject, tie: Tie | None = None) -> JsonObject:
        up = await self._upstream_of_uri(_text(params, "uri"))
        return await up.request(
            "resources/read", _forwarded(params), read_timeout=self.timeouts.request, tie=tie
        )

    async def subscribe(self, uri: str, subscribe: bool) -> None:
        """``resources/subscribe`` (or unsubscribe) on the server that has ``uri``."""
        up = await self._upstream_of_uri(uri)
        method = "resources/subscribe" if subscribe else "resources/unsubscribe"
        await up.request(method, {"uri": uri}, read_timeout=self.timeouts.request)

    async def complete(self, params: JsonObject, tie: Tie | None = None) -> JsonObject:
        ref = params.get("ref")
        if not isinstance(ref, dict):
            raise InvalidInput("params.ref: must be an object")
        if ref.get("type") == "ref/prompt":
            up, original = await self._resolve(
                lambda: self.view.prompt_names, _text(ref, "name"), "prompt"
            )
            ref = {**ref, "name": original}
        else:
            up = await self._upstream_of_uri(_text(ref, "uri"))
        return await up.request(
            "completion/complete",
            _forwarded(params, ref=ref),
            read_timeout=self.timeouts.request,
            tie=tie,
        )

    async def set_logging_level(self, level: str) -> None:
        """Pass ``level`` on to every ready server that offers logging, all at once; a
        server that fails it is logged and skipped, so the client's request never fails for
        it."""
        self.start()

        async def forward(up: Upstream) -> None:
            try:
                with anyio.fail_after(self.timeouts.request):
                    await up.request("logging/setLevel", {"level": level}, read_timeout=None)
            except Exception as exc:  # best effort, per server
                log.info("%s: logging/setLevel %s not applied (%s)", up.label, level, describe(exc))

        async with anyio.create_task_group() as tg:
            for up in self._upstreams.values():
                if up.state == "ready" and up.capabilities.get("logging") is not None:
                    tg.start_soon(forward, up)
