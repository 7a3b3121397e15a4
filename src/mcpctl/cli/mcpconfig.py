"""`mcp-config PROJECT [-o FILE]`: the `.mcp.json` entry that points an MCP client at mcplocal.

The entry is what Claude Code (project scope, `.mcp.json`) and Cursor (`.cursor/mcp.json`) read
for a streamable-HTTP server: ``{"mcpServers": {NAME: {"type": "http", "url": URL}}}``. It holds
the URL of the project's endpoint and nothing else: never a command, an env var or a secret
(those stay in mcpd), so the file can be committed.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from mcpctl.cli.session import client_for
from mcpctl.errors import InvalidInput

DEFAULT_MCPLOCAL_URL = "http://127.0.0.1:7461"
# Clients build tool names from the server name (Claude Code: mcp__NAME__TOOL): keep it plain.
SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def endpoint_url(mcplocal_url: str, project: str) -> str:
    """mcplocal's endpoint for ``project``.

    Raises: InvalidInput for a URL that is not plain http(s)://HOST[:PORT][/PATH].
    """
    parts = urlsplit(mcplocal_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"--mcplocal-url: {mcplocal_url!r} is not an http(s):// URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        # A password or token in the URL would end up in a file meant to be committed.
        raise InvalidInput(
            f"--mcplocal-url: {mcplocal_url!r} must not carry credentials, a query or a fragment"
        )
    return f"{mcplocal_url.rstrip('/')}/projects/{project}/mcp"


def config_document(name: str, url: str) -> dict[str, Any]:
    """The whole `.mcp.json` document with one server entry."""
    return {"mcpServers": {name: {"type": "http", "url": url}}}


def merge(document: Any, name: str, url: str, where: str) -> tuple[dict[str, Any], str]:
    """Put the entry ``name`` into an existing document, keeping everything else.

    Returns the new document and what happened: added, updated or unchanged.
    Raises: InvalidInput when the document is not a JSON object with an object `mcpServers`.
    """
    if not isinstance(document, dict):
        raise InvalidInput(f"{where}: expected a JSON object at the top level")
    servers = document.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise InvalidInput(f"{where}: mcpServers must be a JSON object")
    entry = config_document(name, url)["mcpServers"][name]
    outcome = (
        "unchanged" if servers.get(name) == entry else "updated" if name in servers else "added"
    )
    servers[name] = entry
    return document, outcome


def _read(path: Path) -> Any:
    """The file's JSON, or None when it does not exist.

    Raises: InvalidInput naming the file when it cannot be read or is not JSON.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"{path}: cannot read the file ({reason})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "nothing was changed"
        ) from exc


def _write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` in one step (a reader never sees half a file), keeping its mode."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_entry(output: Path, name: str, url: str) -> str:
    """Merge the entry into ``output`` (created if missing); returns added/updated/unchanged.

    Raises: InvalidInput naming the file when it is not valid JSON or cannot be written.
    """
    # Write through a symlink to its target rather than replacing the link.
    path = output.resolve() if output.is_symlink() else output
    if not path.parent.is_dir():
        raise InvalidInput(f"{output}: the directory {path.parent} does not exist")
    existing = _read(path)
    if existing is None:
        document, outcome = config_document(name, url), "added"
    else:
        document, outcome = merge(existing, name, url, str(output))
    if outcome != "unchanged":
        try:
            _write_atomically(path, document)
        except OSError as exc:
            raise InvalidInput(f"{output}: cannot write the file ({exc.strerror})") from exc
    return outcome


@click.command("mcp-config")
@click.argument("project")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Merge the entry into this file (e.g. .mcp.json), keeping its other servers.",
)
@click.option("--name", help="Server name in the client's config (default: the project name).")
@click.option(
    "--mcplocal-url",
    envvar="MCPCTL_MCPLOCAL_URL",
    default=DEFAULT_MCPLOCAL_URL,
    show_default=True,
    help="Where mcplocal listens (env MCPCTL_MCPLOCAL_URL).",
)
@click.pass_context
def mcp_config(
    ctx: click.Context, project: str, output: Path | None, name: str | None, mcplocal_url: str
) -> None:
    """Print (or merge into FILE) the .mcp.json entry for PROJECT, for Claude Code and Cursor.

    The entry is an HTTP URL to mcplocal's endpoint for the project; it never holds a
    command, an environment variable or a secret. The project must exist in mcpd.
    """
    server_name = name if name is not None else project
    if not SERVER_NAME.fullmatch(server_name):
        raise InvalidInput(
            f"--name: {server_name!r} must be 1-64 letters, digits, '_' or '-' "
            "(clients build tool names from it)"
        )
    url = endpoint_url(mcplocal_url, project)
    client_for(ctx).get_object("projects", project)  # NotFound (exit 4) when it is not there
    if output is None:
        click.echo(json.dumps(config_document(server_name, url), indent=2))
        return
    outcome = write_entry(output, server_name, url)
    click.echo(f"{output}: mcpServers.{server_name} {outcome} ({url})", err=True)
