"""`backup -o FILE` and `restore -f FILE`: the whole control plane to one file and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mcpctl.cli.session import Options

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient

# A restore of tens of thousands of objects is one long transaction: wait longer than usual.
TIMEOUT = 600.0

PASSPHRASE_FILE = click.option(
    "--passphrase-file",
    metavar="FILE|-",
    help="File whose content (trailing newline dropped) is the passphrase; - reads stdin.",
)


def _client(ctx: click.Context) -> McpdClient:
    from mcpctl.client.config import resolve_target
    from mcpctl.client.http import HttpTransport, McpdClient

    opts = ctx.find_object(Options) or Options()
    target = resolve_target(opts.context, opts.server, opts.token)
    client = McpdClient(
        target.server,
        target.token,
        transport=HttpTransport(target.server, timeout=TIMEOUT),
        impersonate=opts.impersonate,
    )
    ctx.call_on_close(client.close)
    return client


def _passphrase(path: str | None, command: str) -> str:
    import sys
    from pathlib import Path

    from mcpctl.errors import InvalidInput

    if path is None:
        raise click.UsageError(
            f"{command} needs --passphrase-file FILE: secret values in a backup are always "
            "encrypted with a passphrase, never written in plaintext"
        )
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise InvalidInput(f"--passphrase-file {path}: {exc.strerror or exc}") from exc
    passphrase = text.rstrip("\r\n")
    if not passphrase:
        raise InvalidInput(f"--passphrase-file {path}: the file is empty")
    return passphrase


def _write_private(path: str, text: str) -> None:
    import os

    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


@click.command()
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    metavar="FILE|-",
    help="Where to write the backup (mode 0600): YAML, or JSON when FILE ends in .json.",
)
@PASSPHRASE_FILE
@click.pass_context
def backup(ctx: click.Context, output: str, passphrase_file: str | None) -> None:
    """Write every object of every kind and the users to one file (tokens are not included).

    Secret values are encrypted with a key derived from the passphrase (scrypt, AES-256-GCM).
    """
    import json

    from mcpctl.errors import InvalidInput
    from mcpctl.resources.yamlcodec import dump

    passphrase = _passphrase(passphrase_file, "backup")
    document = _client(ctx).backup(passphrase)
    text = json.dumps(document, indent=2) + "\n" if output.endswith(".json") else dump(document)
    if output == "-":
        click.echo(text, nl=False)
    else:
        try:
            _write_private(output, text)
        except OSError as exc:
            raise InvalidInput(f"-o {output}: {exc.strerror or exc}") from exc
    objects = document.get("objects", [])
    sealed = sum(1 for o in objects if "encryptedSpec" in o)
    click.echo(
        f"backup: {len(document.get('users', []))} users and {len(objects)} objects "
        f"({sealed} with encrypted values) written to {output}",
        err=True,
    )


def _read_backup(path: str) -> dict[str, Any]:
    import json
    import sys
    from pathlib import Path

    from mcpctl.errors import InvalidInput
    from mcpctl.resources.yamlcodec import load_documents

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror or exc}") from exc
    try:
        documents = [json.loads(text)] if text.lstrip().startswith("{") else None
    except ValueError:
        documents = None
    if documents is None:
        documents = [d.data for d in load_documents(text, path)]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise InvalidInput(
            f"{path}: expected one backup document (a mapping), found {len(documents)}"
        )
    # YAML may have turned unquoted timestamps into datetimes; the wire wants JSON.
    data: dict[str, Any] = json.loads(json.dumps(documents[0], default=str))
    return data


def _ref(kind: str, name: str) -> str:
    from mcpctl.errors import InvalidInput
    from mcpctl.resources.kinds import by_kind

    try:
        return f"{by_kind(kind).singular}/{name}"
    except InvalidInput:
        return f"{kind.lower()}/{name}"


@click.command()
@click.option("-f", "--filename", "file", required=True, metavar="FILE|-", help="The backup file.")
@PASSPHRASE_FILE
@click.option(
    "--dry-run", is_flag=True, help="Validate and report what would happen; change nothing."
)
@click.option(
    "--conflict",
    type=click.Choice(["skip", "overwrite"]),
    default="skip",
    show_default=True,
    help="For objects and users that exist: leave them alone, or replace them.",
)
@click.pass_context
def restore(
    ctx: click.Context, file: str, passphrase_file: str | None, dry_run: bool, conflict: str
) -> None:
    """Restore a backup: users, then every kind in dependency order, all or nothing."""
    passphrase = _passphrase(passphrase_file, "restore")
    document = _read_backup(file)
    answer = _client(ctx).restore(document, passphrase, conflict=conflict, dry_run=dry_run)
    suffix = " (dry run)" if dry_run else ""
    for item in answer["results"]:
        outcome = "skipped (exists)" if item["outcome"] == "skipped" else item["outcome"]
        click.echo(f"{_ref(item['kind'], item['name'])} {outcome}{suffix}")
