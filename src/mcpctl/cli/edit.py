"""`edit`: open an object in an editor and reapply it with its resourceVersion."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import click

from mcpctl.cli.completion_names import complete_kind_or_ref, complete_name_of_kind
from mcpctl.cli.session import client_for

HEADER = (
    "# Edit the object below and save to apply it; an unchanged file cancels the edit.\n"
    "# status and server-set metadata are ignored. On a conflict or an error this file is kept.\n"
)


def editor_command() -> list[str]:
    for var in ("MCPCTL_EDITOR", "VISUAL", "EDITOR"):
        if value := os.environ.get(var):
            return shlex.split(value)
    return ["vi"]


@click.command()
@click.argument("kind", shell_complete=complete_kind_or_ref)
@click.argument("name", required=False, shell_complete=complete_name_of_kind)
@click.pass_context
def edit(ctx: click.Context, kind: str, name: str | None) -> None:
    """Edit one object in $MCPCTL_EDITOR, $VISUAL, $EDITOR or vi, then apply it."""
    from mcpctl.cli.manifests import to_manifests
    from mcpctl.errors import AppError, InvalidInput
    from mcpctl.resources.kinds import lookup
    from mcpctl.resources.yamlcodec import dump, load_documents

    if "/" in kind:
        kind, _, name = kind.partition("/")
    if not name:
        raise InvalidInput("say which object: edit KIND NAME")
    info = lookup(kind)
    client = client_for(ctx)
    original = HEADER + dump(client.get_object(info.plural, name))
    fd, tmp = tempfile.mkstemp(prefix=f"mcpctl-edit-{info.singular}-{name}-", suffix=".yaml")
    path = Path(tmp)
    with os.fdopen(fd, "w") as fh:
        fh.write(original)
    command = [*editor_command(), str(path)]
    try:
        result = subprocess.run(command, check=False)  # noqa: S603
    except OSError as exc:
        path.unlink()
        raise InvalidInput(
            f"cannot run the editor {command[0]!r} ({exc.strerror}); "
            "set MCPCTL_EDITOR, VISUAL or EDITOR"
        ) from exc
    if result.returncode != 0:
        raise AppError(f"editor exited with {result.returncode}; your edits are in {path}")
    edited = path.read_text()
    if edited == original:
        path.unlink()
        click.echo("Edit cancelled, no changes made.")
        return
    try:
        manifests = to_manifests(load_documents(edited, str(path)), keep_version=True)
        if len(manifests) != 1 or manifests[0].info is not info or manifests[0].name != name:
            raise InvalidInput(f"{path}: keep exactly one {info.kind} named {name!r}")
        outcome, _ = client.apply_object(info.plural, manifests[0].obj)
    except AppError as exc:
        exc.message = f"{exc.message}\nyour edits are kept in {path}"
        raise
    path.unlink()
    click.echo(f"{info.singular}/{name} {'edited' if outcome == 'configured' else outcome}")
