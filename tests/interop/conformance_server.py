"""The fixtures ``@modelcontextprotocol/conformance`` expects of the server it scores, so that
its scenarios test what they say instead of failing on a missing tool.

The suite's server scenarios call tools, prompts and resources of a reference server that is
not published on npm (``test_simple_text``, ``test_simple_prompt``, ``test://static-text``,
...). Each fixture below follows what the scenario of that name in conformance 0.1.16 sends
and checks (read from its ``dist/index.js``). The same server runs two ways:

- ``python conformance_server.py stdio``: how mcpd's process runtime runs it, for the path
  conformance → mcplocal → mcpd relay → this server;
- ``python conformance_server.py http --port N``: streamable HTTP at ``/mcp`` on 127.0.0.1
  (``--port 0`` picks a free port), the direct path. It prints
  ``listening on http://127.0.0.1:PORT/mcp`` once it accepts connections, and refuses a
  foreign ``Host`` or ``Origin`` (the SDK's DNS-rebinding protection), as a local server
  should.

Server-to-client requests (sampling, elicitation) go to the client that made the call; a
client that did not declare the capability gets a tool result with ``isError`` saying so,
as the scenarios ask. ``logging/setLevel`` is accepted but does not filter: the one tool
that logs does so at ``info``, which every level the suite sets lets through.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import socket
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.jsonrpc import INVALID_PARAMS

Ctx = ServerRequestContext[Any]
Args = dict[str, Any]

RED_PIXEL_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
STEP_SECONDS = 0.05  # the pause between log and progress notifications the scenarios ask for
TEMPLATE = "test://template/{id}/data"
TEMPLATE_URI = re.compile(r"^test://template/(?P<id>[^/]+)/data$")


def silent_wav() -> str:
    """10 ms of 8 kHz mono silence, base64: the smallest audio the audio scenario accepts."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 80)
    return base64.b64encode(buffer.getvalue()).decode()


def text(value: str) -> types.TextContent:
    return types.TextContent(type="text", text=value)


def image() -> types.ImageContent:
    return types.ImageContent(type="image", data=RED_PIXEL_PNG, mime_type="image/png")


def embedded(uri: str, mime_type: str, content: str) -> types.EmbeddedResource:
    contents = types.TextResourceContents(uri=uri, mime_type=mime_type, text=content)
    return types.EmbeddedResource(type="resource", resource=contents)


def result(*content: types.ContentBlock, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=list(content), is_error=is_error)


# -- tools -----------------------------------------------------------------------------------

ToolFn = Callable[[Ctx, Args], Awaitable[types.CallToolResult]]


@dataclass(frozen=True)
class Fixture:
    tool: types.Tool
    run: ToolFn


def no_arguments() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


def one_string(name: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": description}},
        "required": [name],
    }


async def simple_text(ctx: Ctx, args: Args) -> types.CallToolResult:
    return result(text("This is a simple text response for testing."))


async def image_content(ctx: Ctx, args: Args) -> types.CallToolResult:
    return result(image())


async def audio_content(ctx: Ctx, args: Args) -> types.CallToolResult:
    return result(types.AudioContent(type="audio", data=silent_wav(), mime_type="audio/wav"))


async def embedded_resource(ctx: Ctx, args: Args) -> types.CallToolResult:
    return result(
        embedded("test://embedded-resource", "text/plain", "This is an embedded resource content.")
    )


async def multiple_content_types(ctx: Ctx, args: Args) -> types.CallToolResult:
    data = json.dumps({"test": "data", "value": 123})
    return result(
        text("Multiple content types test:"),
        image(),
        embedded("test://mixed-content-resource", "application/json", data),
    )


async def error_handling(ctx: Ctx, args: Args) -> types.CallToolResult:
    return result(text("This tool intentionally returns an error for testing"), is_error=True)


async def with_logging(ctx: Ctx, args: Args) -> types.CallToolResult:
    """Three ``info`` log messages on the call's own stream, 50 ms apart."""
    for i, message in enumerate(
        ["Tool execution started", "Tool processing data", "Tool execution completed"]
    ):
        if i:
            await anyio.sleep(STEP_SECONDS)
        params = types.LoggingMessageNotificationParams(level="info", data=message)
        await ctx.session.send_notification(
            types.LoggingMessageNotification(params=params), related_request_id=ctx.request_id
        )
    return result(text("Tool with logging executed successfully"))


async def with_progress(ctx: Ctx, args: Args) -> types.CallToolResult:
    """Progress 0, 50, 100 of 100, 50 ms apart (nothing is sent without a progress token)."""
    for i, progress in enumerate([0, 50, 100]):
        if i:
            await anyio.sleep(STEP_SECONDS)
        await ctx.session.report_progress(progress, 100)
    return result(text("Tool with progress executed successfully"))


def lacks(ctx: Ctx, capability: types.ClientCapabilities) -> bool:
    return not ctx.session.check_client_capability(capability)


async def sampling(ctx: Ctx, args: Args) -> types.CallToolResult:
    if lacks(ctx, types.ClientCapabilities(sampling=types.SamplingCapability())):
        return result(text("The client does not support sampling"), is_error=True)
    message = types.SamplingMessage(role="user", content=text(str(args.get("prompt", ""))))
    request = types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(messages=[message], max_tokens=100)
    )
    answer = await ctx.session.send_request(
        request,
        types.CreateMessageResult,
        metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
    )
    said = answer.content.text if isinstance(answer.content, types.TextContent) else "(not text)"
    return result(text(f"LLM response: {said}"))


async def elicit(ctx: Ctx, message: str, schema: dict[str, Any]) -> types.CallToolResult:
    if lacks(ctx, types.ClientCapabilities(elicitation=types.ElicitationCapability())):
        return result(text("The client does not support elicitation"), is_error=True)
    answer = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    content = json.dumps(answer.content)
    return result(text(f"Elicitation completed: action={answer.action}, content={content}"))


async def elicitation(ctx: Ctx, args: Args) -> types.CallToolResult:
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    return await elicit(ctx, str(args.get("message", "")), schema)


async def elicitation_defaults(ctx: Ctx, args: Args) -> types.CallToolResult:
    """SEP-1034: a default for every primitive type."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": {"type": "boolean", "description": "Verified user", "default": True},
        },
    }
    return await elicit(ctx, "Please review and update the form fields with defaults", schema)


def choices(prefix: str, titles: list[str]) -> list[dict[str, str]]:
    return [{"const": f"{prefix}{i}", "title": title} for i, title in enumerate(titles, 1)]


async def elicitation_enums(ctx: Ctx, args: Args) -> types.CallToolResult:
    """SEP-1330: the five enum forms, untitled and titled, single and multiple choice."""
    options = ["option1", "option2", "option3"]
    schema = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "description": "Pick one", "enum": options},
            "titledSingle": {
                "type": "string",
                "description": "Pick one (titled)",
                "oneOf": choices("value", ["First Option", "Second Option", "Third Option"]),
            },
            "legacyEnum": {
                "type": "string",
                "description": "Pick one (legacy titles)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {
                "type": "array",
                "description": "Pick several",
                "items": {"type": "string", "enum": options},
            },
            "titledMulti": {
                "type": "array",
                "description": "Pick several (titled)",
                "items": {
                    "anyOf": choices("value", ["First Choice", "Second Choice", "Third Choice"])
                },
            },
        },
    }
    return await elicit(ctx, "Please select options from the enum fields", schema)


async def json_schema_2020_12(ctx: Ctx, args: Args) -> types.CallToolResult:
    return result(text(f"Received: {json.dumps(args, sort_keys=True)}"))


async def reconnection(ctx: Ctx, args: Args) -> types.CallToolResult:
    """SEP-1699: close the call's SSE stream before answering, so the client must resume.

    The SDK offers the close only to 2025-11-25 requests on a server with an event store; the
    suite asks with 2025-03-26 (and this server keeps no events), so the answer arrives on the
    open stream, which the suite notes as INFO."""
    if ctx.close_sse_stream is not None:
        await ctx.close_sse_stream()
    await anyio.sleep(STEP_SECONDS)
    return result(text("Reconnection test completed"))


JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}


def fixture(
    name: str, description: str, run: ToolFn, schema: dict[str, Any] | None = None
) -> Fixture:
    tool = types.Tool(name=name, description=description, input_schema=schema or no_arguments())
    return Fixture(tool, run)


FIXTURES = (
    fixture("test_simple_text", "Returns simple text content", simple_text),
    fixture("test_image_content", "Returns a 1x1 red PNG", image_content),
    fixture("test_audio_content", "Returns a short silent WAV", audio_content),
    fixture("test_embedded_resource", "Returns an embedded text resource", embedded_resource),
    fixture(
        "test_multiple_content_types", "Returns text, image and resource", multiple_content_types
    ),
    fixture("test_tool_with_logging", "Sends three log messages while it runs", with_logging),
    fixture("test_error_handling", "Always returns an error result", error_handling),
    fixture("test_tool_with_progress", "Reports progress 0, 50, 100 of 100", with_progress),
    fixture(
        "test_sampling",
        "Asks the client's LLM to answer a prompt",
        sampling,
        one_string("prompt", "The prompt to send to the LLM"),
    ),
    fixture(
        "test_elicitation",
        "Asks the user for a username and email",
        elicitation,
        one_string("message", "The message to show the user"),
    ),
    fixture(
        "test_elicitation_sep1034_defaults",
        "Elicits a form whose fields have defaults (SEP-1034)",
        elicitation_defaults,
    ),
    fixture(
        "test_elicitation_sep1330_enums",
        "Elicits a form with every enum form (SEP-1330)",
        elicitation_enums,
    ),
    fixture(
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features",
        json_schema_2020_12,
        JSON_SCHEMA_2020_12,
    ),
    fixture("test_reconnection", "Closes its SSE stream before answering (SEP-1699)", reconnection),
)
TOOLS = {f.tool.name: f for f in FIXTURES}


async def list_tools(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[f.tool for f in FIXTURES])


async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    found = TOOLS.get(params.name)
    if found is None:
        raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
    return await found.run(ctx, params.arguments or {})


# -- resources -------------------------------------------------------------------------------

STATIC_TEXT = "This is the content of the static text resource."
WATCHED_TEXT = "A resource clients subscribe to."
RESOURCES = (
    types.Resource(
        uri="test://static-text",
        name="static-text",
        description="A static text resource",
        mime_type="text/plain",
    ),
    types.Resource(
        uri="test://static-binary",
        name="static-binary",
        description="A static binary resource (a 1x1 PNG)",
        mime_type="image/png",
    ),
    types.Resource(
        uri="test://watched-resource",
        name="watched-resource",
        description="A resource that can be subscribed to",
        mime_type="text/plain",
    ),
)


async def list_resources(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=list(RESOURCES))


async def list_templates(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    template = types.ResourceTemplate(
        uri_template=TEMPLATE,
        name="template-data",
        description="Data for an id, substituted into the text",
        mime_type="application/json",
    )
    return types.ListResourceTemplatesResult(resource_templates=[template])


def contents_of(uri: str) -> types.TextResourceContents | types.BlobResourceContents:
    """Raises:
    MCPError: INVALID_PARAMS for a URI this server does not have."""
    if uri == "test://static-text":
        return types.TextResourceContents(uri=uri, mime_type="text/plain", text=STATIC_TEXT)
    if uri == "test://static-binary":
        return types.BlobResourceContents(uri=uri, mime_type="image/png", blob=RED_PIXEL_PNG)
    if uri == "test://watched-resource":
        return types.TextResourceContents(uri=uri, mime_type="text/plain", text=WATCHED_TEXT)
    if match := TEMPLATE_URI.match(uri):
        key = match["id"]
        data = {"id": key, "templateTest": True, "data": f"Data for ID: {key}"}
        return types.TextResourceContents(
            uri=uri, mime_type="application/json", text=json.dumps(data)
        )
    raise MCPError(INVALID_PARAMS, f"Resource not found: {uri}", {"uri": uri})


async def read_resource(
    ctx: Ctx, params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    return types.ReadResourceResult(contents=[contents_of(str(params.uri))])


async def subscribe(ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
    """Accepted for any URI this server has; nothing here ever changes, so no updates follow."""
    contents_of(str(params.uri))
    return types.EmptyResult()


async def unsubscribe(ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    contents_of(str(params.uri))
    return types.EmptyResult()


# -- prompts, completion, logging ------------------------------------------------------------


def argument(name: str, description: str) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=True)


PROMPTS = (
    types.Prompt(name="test_simple_prompt", description="A simple prompt without arguments"),
    types.Prompt(
        name="test_prompt_with_arguments",
        description="A prompt with two required arguments",
        arguments=[
            argument("arg1", "First test argument"),
            argument("arg2", "Second test argument"),
        ],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        description="A prompt that embeds a resource",
        arguments=[argument("resourceUri", "URI of the resource to embed")],
    ),
    types.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
)


def user(content: types.ContentBlock) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=content)


async def list_prompts(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=list(PROMPTS))


async def get_prompt(ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    args = params.arguments or {}
    if params.name == "test_simple_prompt":
        messages = [user(text("This is a simple prompt for testing."))]
    elif params.name == "test_prompt_with_arguments":
        arg1, arg2 = args.get("arg1", ""), args.get("arg2", "")
        messages = [user(text(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"))]
    elif params.name == "test_prompt_with_embedded_resource":
        uri = args.get("resourceUri", "test://example-resource")
        messages = [
            user(embedded(uri, "text/plain", "Embedded resource content for testing.")),
            user(text("Please process the embedded resource above.")),
        ]
    elif params.name == "test_prompt_with_image":
        messages = [user(image()), user(text("Please analyze the image above."))]
    else:
        raise MCPError(INVALID_PARAMS, f"Unknown prompt: {params.name}")
    return types.GetPromptResult(messages=messages)


# What completion offers, by (prompt name or template URI, argument name).
SUGGESTIONS = {
    ("test_prompt_with_arguments", "arg1"): ["test", "testValue1", "paris", "park", "party"],
    ("test_prompt_with_arguments", "arg2"): ["testValue2", "world"],
    (TEMPLATE, "id"): ["123", "456", "789"],
}


async def complete(ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
    """The suggestions that start with what the user typed."""
    ref = params.ref
    key = ref.name if isinstance(ref, types.PromptReference) else ref.uri
    typed = params.argument.value
    values = [v for v in SUGGESTIONS.get((key, params.argument.name), []) if v.startswith(typed)]
    completion = types.Completion(values=values, total=len(values), has_more=False)
    return types.CompleteResult(completion=completion)


async def set_logging_level(ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


def conformance_server() -> Server[Any]:
    server: Server[Any] = Server(
        "mcpctl-conformance-fixtures",
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
    )
    # Registered by method: the constructor argument warns that logging is deprecated in the
    # 2026-07-28 protocol, which the suite (2025-11-25) still tests.
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_logging_level)
    return server


# -- transports ------------------------------------------------------------------------------


async def serve_stdio() -> None:
    server = conformance_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


class _Uvicorn(uvicorn.Server):
    """uvicorn that says where it listens once it does, for whoever started it."""

    def __init__(self, config: uvicorn.Config, port: int) -> None:
        super().__init__(config)
        self.port = port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            print(f"listening on http://127.0.0.1:{self.port}/mcp", flush=True)


def serve_http(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    # host= turns on the SDK's DNS-rebinding protection for 127.0.0.1, localhost and [::1].
    app = conformance_server().streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    _Uvicorn(config, sock.getsockname()[1]).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description="MCP server with the conformance fixtures")
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("stdio", help="serve over stdin/stdout")
    http = modes.add_parser("http", help="serve streamable HTTP at /mcp on 127.0.0.1")
    http.add_argument("--port", type=int, default=0, help="0: any free port")
    options = parser.parse_args()
    if options.mode == "stdio":
        anyio.run(serve_stdio)
    else:
        serve_http(options.port)


if __name__ == "__main__":
    main()
