"""`apply -f`, `diff -f` and `delete`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mcpctl.cli.completion_names import complete_agent_names, complete_targets
from mcpctl.cli.session import client_for
from mcpctl.cli.threads import is_threads
from mcpctl.cli.tokens import is_tokens

if TYPE_CHECKING:
    from mcpctl.cli.manifests import Manifest
    from mcpctl.client.http import McpdClient

BULK_CHUNK = 500  # the most mcpd takes in one POST /api/v1/apply

FILES = click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    metavar="FILE|DIR|-",
    help="YAML or JSON file, directory, or - for stdin (repeatable).",
)


def _load(files: tuple[str, ...], *, keep_version: bool = False) -> list[Manifest]:
    from mcpctl.cli.manifests import read_documents, to_manifests
    from mcpctl.errors import InvalidInput

    if not files:
        raise click.UsageError("give at least one -f FILE|DIR|-")
    manifests = to_manifests(read_documents(files), keep_version=keep_version)
    if not manifests:
        raise InvalidInput(f"{', '.join(files)}: no objects found")
    return manifests


def _each(manifests: list[Manifest], action: Any, verb: str) -> int:
    """Run ``action`` per object; report each; return the exit code of the first failure."""
    from mcpctl.errors import AppError

    first_failure = 0
    failures = 0
    for m in manifests:
        try:
            message = action(m)
        except AppError as exc:
            message = str(exc) if str(exc).startswith(m.ref) else f"{m.ref}: {exc}"
            click.echo(f"error: {message}", err=True)
            first_failure = first_failure or exc.exit_code
            failures += 1
            continue
        if message:
            click.echo(message)
    if first_failure:
        failed = (
            "failed"
            if len(manifests) == 1
            else f"failed for {failures} of {len(manifests)} objects"
        )
        click.echo(f"error: {verb} {failed}", err=True)
    return first_failure


@click.command()
@FILES
@click.option("--dry-run", is_flag=True, help="Validate on the server and report; change nothing.")
@click.pass_context
def apply(ctx: click.Context, files: tuple[str, ...], dry_run: bool) -> None:
    """Create or update objects from YAML (multi-document; kinds in dependency order)."""
    manifests = _load(files)
    results = _apply_all(client_for(ctx), manifests, dry_run=dry_run)
    suffix = " (dry run)" if dry_run else ""

    def one(m: Manifest) -> str:
        outcome, _ = results[m.ref].unwrap()
        return f"{m.ref} {outcome}{suffix}"

    ctx.exit(_each(manifests, one, "apply"))


class _Result:
    """One object's answer from a bulk apply: an outcome and the object, or the error."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def unwrap(self) -> tuple[str, dict[str, Any]]:
        from mcpctl.errors import from_problem

        error = self.answer.get("error")
        if error:
            raise from_problem(error, int(error.get("status", 500)))
        return str(self.answer["outcome"]), dict(self.answer["object"])


def _apply_all(
    client: McpdClient, manifests: list[Manifest], *, dry_run: bool
) -> dict[str, _Result]:
    """Apply in dependency order, BULK_CHUNK objects per request (one transaction each: later
    objects see earlier ones, also in a dry run)."""
    results: dict[str, _Result] = {}
    for start in range(0, len(manifests), BULK_CHUNK):
        chunk = manifests[start : start + BULK_CHUNK]
        answers = client.apply_many([m.obj for m in chunk], dry_run=dry_run)
        for m, answer in zip(chunk, answers, strict=True):
            results[m.ref] = _Result(answer)
    return results


def _comparable(obj: dict[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {}
    meta = obj.get("metadata", {})
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {"name": meta.get("name"), "labels": meta.get("labels") or {}},
        "spec": obj.get("spec") or {},
    }


def _diff_one(client: McpdClient, m: Manifest, result: _Result) -> str:
    import difflib

    from mcpctl.errors import NotFound
    from mcpctl.resources.yamlcodec import dump

    _, wanted = result.unwrap()
    try:
        live = client.get_object(m.info.plural, m.name)
    except NotFound:
        live = None
    before = dump(_comparable(live)).splitlines(keepends=True) if live else []
    after = dump(_comparable(wanted)).splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(before, after, fromfile=f"live/{m.ref}", tofile=f"file/{m.ref}")
    )


@click.command()
@FILES
@click.pass_context
def diff(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Show what `apply` would change, as a unified diff. Exit 1 when there are differences."""
    from mcpctl.errors import AppError

    manifests = _load(files)
    client = client_for(ctx)
    results = _apply_all(client, manifests, dry_run=True)
    changed = False
    failure = 0
    for m in manifests:
        try:
            text = _diff_one(client, m, results[m.ref])
        except AppError as exc:
            click.echo(f"error: {m.ref}: {exc}", err=True)
            failure = failure or exc.exit_code
            continue
        if text:
            changed = True
            click.echo(text, nl=not text.endswith("\n"))
    ctx.exit(failure or (1 if changed else 0))


@click.command()
@click.argument("args", nargs=-1, shell_complete=complete_targets)
@FILES
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; change nothing.")
@click.option(
    "--agent",
    shell_complete=complete_agent_names,
    help="The agent of personalities given by their short names.",
)
@click.pass_context
def delete(
    ctx: click.Context,
    args: tuple[str, ...],
    files: tuple[str, ...],
    dry_run: bool,
    agent: str | None,
) -> None:
    """Delete objects: `delete KIND NAME...`, `delete KIND/NAME...` or `delete -f FILE`.

    Objects that belong to the deleted one go with it (an agent's personalities, prompts and
    chat threads; a project's prompts); references that may lapse are cleared (an agent's
    project). `delete thread ID...` deletes chat threads.
    """
    from mcpctl.cli.get import parse_targets
    from mcpctl.cli.manifests import Manifest
    from mcpctl.errors import InvalidInput

    client = client_for(ctx)
    if is_tokens(args) and not files:
        from mcpctl.cli.tokens import delete_tokens

        if dry_run:
            raise click.UsageError("`delete token` has no --dry-run")
        delete_tokens(client, args)
        return
    if args and is_threads(args[0]) and not files:
        from mcpctl.cli.threads import delete_threads

        delete_threads(client, args, dry_run)
        return
    if files:
        if args:
            raise click.UsageError("give either KIND NAME... or -f FILE, not both")
        if agent:
            raise click.UsageError("--agent goes with KIND NAME..., not -f FILE")
        manifests = list(reversed(_load(files)))
    else:
        targets = parse_targets(args)
        if any(name is None for _, name in targets):
            raise InvalidInput(
                "say which object: delete KIND NAME (deleting every object of a "
                "kind is not supported)"
            )
        from mcpctl.cli.agents import check_agent_filter, qualify

        check_agent_filter([info for info, _ in targets], agent)
        manifests = [
            Manifest(info, {"metadata": {"name": qualify(info, str(name), agent)}}, "arguments")
            for info, name in targets
        ]
    suffix = " (dry run)" if dry_run else ""

    def one(m: Manifest) -> str:
        client.delete_object(m.info.plural, m.name, dry_run=dry_run)
        return f"{m.ref} deleted{suffix}"

    ctx.exit(_each(manifests, one, "delete"))
