"""`create KIND`: imperative shortcuts that build an object and POST it."""

from __future__ import annotations

from typing import Any

import click

from mcpctl.cli.completion_names import (
    complete_agent_names,
    complete_llm_names,
    complete_project_names,
    complete_server_names,
    complete_template_names,
)
from mcpctl.cli.session import client_for
from mcpctl.domain.rbac import ACTIONS


def parse_env(entries: tuple[str, ...]) -> list[dict[str, Any]]:
    """``K=V`` → a literal; ``K=secret:NAME/KEY`` → a secretRef."""
    from mcpctl.errors import InvalidInput

    env: list[dict[str, Any]] = []
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--env {entry!r}: use NAME=VALUE or NAME=secret:SECRET/KEY")
        if value.startswith("secret:"):
            secret, slash, secret_key = value[len("secret:") :].partition("/")
            if not slash or not secret or not secret_key:
                raise InvalidInput(f"--env {entry!r}: use NAME=secret:SECRET/KEY")
            env.append(
                {"name": key, "valueFrom": {"secretRef": {"name": secret, "key": secret_key}}}
            )
        else:
            env.append({"name": key, "value": value})
    return env


def parse_literals(entries: tuple[str, ...]) -> dict[str, str]:
    from mcpctl.errors import InvalidInput

    data: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--from-literal {entry!r}: use KEY=VALUE")
        data[key] = value
    return data


def parse_labels(entries: tuple[str, ...]) -> dict[str, str]:
    from mcpctl.errors import InvalidInput

    labels: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep:
            raise InvalidInput(f"--label {entry!r}: use KEY=VALUE")
        labels[key] = value
    return labels


def _submit(
    ctx: click.Context, plural: str, obj: dict[str, Any], dry_run: bool, fmt: str | None
) -> None:
    created = client_for(ctx).create_object(plural, obj, dry_run=dry_run)
    if fmt:
        from mcpctl.cli.printers import render

        click.echo(render([created], fmt, single=True), nl=False)
    else:
        click.echo(
            f"{obj['kind'].lower()}/{obj['metadata']['name']} created"
            + (" (dry run)" if dry_run else "")
        )


COMMON = [
    click.option("-l", "--label", "labels", multiple=True, help="KEY=VALUE label (repeatable)."),
    click.option("--dry-run", is_flag=True, help="Validate on the server; create nothing."),
    click.option(
        "-o",
        "--output",
        "fmt",
        type=click.Choice(["yaml", "json", "name"]),
        help="Print the object instead of a message.",
    ),
]


def common(fn: Any) -> Any:
    for option in reversed(COMMON):
        fn = option(fn)
    return fn


def _obj(kind: str, name: str, labels: tuple[str, ...], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mcpctl/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": parse_labels(labels)},
        "spec": spec,
    }


@click.group()
def create() -> None:
    """Create an object from flags (use `apply -f` for YAML)."""


@create.command("server")
@click.argument("name")
@click.option(
    "--from-template",
    "template",
    shell_complete=complete_template_names,
    help="Template to build the server from.",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    metavar="K=V|K=secret:S/KEY",
    help="Environment entry (repeatable).",
)
@click.option("--command", "command", help="Command to run (runtime process).")
@click.option("--arg", "args", multiple=True, help="Argument (repeatable).")
@click.option("--image", help="Container image (runtime docker).")
@click.option("--url", help="URL of an external HTTP server.")
@click.option("--runtime", type=click.Choice(["process", "docker", "external"]))
@click.option("--transport", type=click.Choice(["stdio", "http"]))
@click.option(
    "--client-feature",
    "client_features",
    multiple=True,
    type=click.Choice(["sampling", "elicitation", "roots"]),
    help="A client feature the server's tools need (repeatable; see docs/relay.md).",
)
@click.option("--description", default="")
@common
@click.pass_context
def create_server(
    ctx: click.Context,
    name: str,
    template: str | None,
    env: tuple[str, ...],
    command: str | None,
    args: tuple[str, ...],
    image: str | None,
    url: str | None,
    runtime: str | None,
    transport: str | None,
    client_features: tuple[str, ...],
    description: str,
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create a server, usually from a template: --from-template T --env K=V."""
    spec: dict[str, Any] = {
        "fromTemplate": template,
        "env": parse_env(env),
        "command": command,
        "args": list(args),
        "image": image,
        "url": url,
        "runtime": runtime,
        "transport": transport,
        "clientFeatures": list(client_features),
        "description": description,
    }
    spec = {k: v for k, v in spec.items() if v not in (None, [], "")}
    _submit(ctx, "servers", _obj("Server", name, labels, spec), dry_run, fmt)


@create.command("secret")
@click.argument("name")
@click.option(
    "--from-literal",
    "literals",
    multiple=True,
    metavar="KEY=VALUE",
    help="A key and its value (repeatable).",
)
@common
@click.pass_context
def create_secret(
    ctx: click.Context,
    name: str,
    literals: tuple[str, ...],
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create a secret: --from-literal KEY=VALUE ..."""
    _submit(
        ctx,
        "secrets",
        _obj("Secret", name, labels, {"data": parse_literals(literals)}),
        dry_run,
        fmt,
    )


@create.command("project")
@click.argument("name")
@click.option(
    "--server",
    "servers",
    multiple=True,
    shell_complete=complete_server_names,
    help="Server to include (repeatable).",
)
@click.option("--description", default="")
@click.option("--gated", is_flag=True, help="Reveal tools only once the client states its task.")
@common
@click.pass_context
def create_project(
    ctx: click.Context,
    name: str,
    servers: tuple[str, ...],
    description: str,
    gated: bool,
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create a project: --server S ..."""
    spec: dict[str, Any] = {"servers": list(servers)}
    if description:
        spec["description"] = description
    if gated:
        spec["gated"] = True
    _submit(ctx, "projects", _obj("Project", name, labels, spec), dry_run, fmt)


def parse_params(entries: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs as ``defaultParams``: values read as YAML scalars (``0.2`` a number,
    ``[a, b]`` a list); ``stop`` given as one string becomes a list of one."""
    import yaml

    from mcpctl.errors import InvalidInput

    params: dict[str, Any] = {}
    for entry in entries:
        key, sep, raw = entry.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param {entry!r}: use KEY=VALUE, e.g. temperature=0.2")
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            value = raw
        if key == "stop" and not isinstance(value, list):
            value = [raw]
        params[key] = value
    return params


def parse_secret_ref(option: str, value: str) -> dict[str, str]:
    """``secret:NAME/KEY`` → ``{name, key}``."""
    from mcpctl.errors import InvalidInput

    secret, slash, key = value.removeprefix("secret:").partition("/")
    if not value.startswith("secret:") or not slash or not secret or not key:
        raise InvalidInput(f"{option} {value!r}: use secret:SECRET/KEY")
    return {"name": secret, "key": key}


@create.command("llm")
@click.argument("name")
@click.option(
    "--provider",
    required=True,
    type=click.Choice(["openai", "anthropic"]),
    help="openai: any OpenAI-compatible server; anthropic: the messages API.",
)
@click.option("--url", required=True, help="openai: the API base (.../v1); anthropic: the host.")
@click.option("--model", required=True, help="The backend's model name.")
@click.option("--api-key", metavar="secret:S/KEY", help="The API key, from a secret.")
@click.option("--pool-name", help="The pool to join (default: a pool of its own name).")
@click.option("--tier", help="Free text to group Llms by (fast, cheap, gpu...).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="K=V",
    help="A default parameter: temperature, top_p, max_tokens, stop, seed... (repeatable).",
)
@click.option(
    "--status",
    type=click.Choice(["active", "inactive", "hibernating"]),
    help="Default active; inactive leaves it out of its pool.",
)
@common
@click.pass_context
def create_llm(
    ctx: click.Context,
    name: str,
    provider: str,
    url: str,
    model: str,
    api_key: str | None,
    pool_name: str | None,
    tier: str | None,
    params: tuple[str, ...],
    status: str | None,
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create an Llm: --provider openai --url URL --model M [--api-key secret:S/KEY]."""
    spec: dict[str, Any] = {
        "provider": provider,
        "url": url,
        "model": model,
        "apiKey": parse_secret_ref("--api-key", api_key) if api_key else None,
        "tier": tier,
        "poolName": pool_name,
        "defaultParams": parse_params(params),
        "status": status,
    }
    spec = {k: v for k, v in spec.items() if v not in (None, {}, "")}
    _submit(ctx, "llms", _obj("Llm", name, labels, spec), dry_run, fmt)


@create.command("agent")
@click.argument("name")
@click.option(
    "--llm", required=True, shell_complete=complete_llm_names, help="The Llm it talks to."
)
@click.option(
    "--project", shell_complete=complete_project_names, help="A project whose tools it may use."
)
@click.option("--system-prompt", help="The first part of every system block.")
@click.option(
    "--default-personality",
    help="One of its personalities (short name); they need the agent, so apply them with it.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="K=V",
    help="A default parameter: temperature, top_p, max_tokens, stop, seed... (repeatable).",
)
@common
@click.pass_context
def create_agent(
    ctx: click.Context,
    name: str,
    llm: str,
    project: str | None,
    system_prompt: str | None,
    default_personality: str | None,
    params: tuple[str, ...],
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create an agent: --llm L [--project P] [--system-prompt TEXT] [--param K=V]."""
    spec: dict[str, Any] = {
        "llm": llm,
        "project": project,
        "systemPrompt": system_prompt,
        "defaultParams": parse_params(params),
        "defaultPersonality": default_personality,
    }
    spec = {k: v for k, v in spec.items() if v not in (None, {}, "")}
    _submit(ctx, "agents", _obj("Agent", name, labels, spec), dry_run, fmt)


def parse_bindings(entries: tuple[str, ...]) -> list[dict[str, Any]]:
    """``PROMPT`` or ``PROMPT=PRIORITY`` → personality prompt bindings."""
    from mcpctl.errors import InvalidInput

    bindings: list[dict[str, Any]] = []
    for entry in entries:
        prompt, sep, priority = entry.partition("=")
        binding: dict[str, Any] = {"name": prompt}
        if sep:
            if not priority.isdigit():
                raise InvalidInput(f"--prompt {entry!r}: use PROMPT or PROMPT=PRIORITY (1-10)")
            binding["priority"] = int(priority)
        bindings.append(binding)
    return bindings


@create.command("personality")
@click.argument("name")
@click.option(
    "--agent",
    required=True,
    shell_complete=complete_agent_names,
    help="The agent it belongs to (NAME may be short: it becomes AGENT.NAME).",
)
@click.option(
    "--prompt",
    "prompts",
    multiple=True,
    metavar="PROMPT[=PRIORITY]",
    help="A prompt it adds, maybe with its own priority here (repeatable).",
)
@click.option("--priority", type=click.IntRange(1, 10), help="Orders the agent's personalities.")
@click.option("--description", default="")
@common
@click.pass_context
def create_personality(
    ctx: click.Context,
    name: str,
    agent: str,
    prompts: tuple[str, ...],
    priority: int | None,
    description: str,
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create a personality of an agent: --agent A --prompt P[=PRIORITY] ..."""
    full = name if "." in name else f"{agent}.{name}"
    spec: dict[str, Any] = {
        "agent": agent,
        "description": description,
        "priority": priority,
        "prompts": parse_bindings(prompts),
    }
    spec = {k: v for k, v in spec.items() if v not in (None, [], "")}
    _submit(ctx, "personalities", _obj("Personality", full, labels, spec), dry_run, fmt)


def _check_subject(value: str) -> str:
    from mcpctl.domain.names import is_valid_name

    prefix, _, name = value.partition(":")
    if prefix not in ("user", "group") or not is_valid_name(name):
        raise click.BadParameter(f"{value!r}: use user:NAME or group:NAME")
    return value


def _subjects(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    return [_check_subject(v) for v in values]


def parse_binding(value: str) -> dict[str, str]:
    """``ROLE:RESOURCE[:NAME]`` as the binding YAML would store (RESOURCE as a kind's plural).

    Raises:
        click.BadParameter: naming the value (a usage error, exit 2).
    """
    from mcpctl.domain.names import is_valid_name
    from mcpctl.domain.rbac import ANY, ROLES
    from mcpctl.errors import InvalidInput
    from mcpctl.resources.rbacdefinitions import normalise_resource

    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise click.BadParameter(f"{value!r}: use ROLE:RESOURCE or ROLE:RESOURCE:NAME")
    role, resource = parts[0], parts[1]
    if role not in ROLES:
        raise click.BadParameter(f"{value!r}: unknown role {role!r}; roles: {', '.join(ROLES)}")
    try:
        binding = {"role": role, "resource": normalise_resource(resource)}
    except InvalidInput as exc:
        raise click.BadParameter(f"{value!r}: {exc.message}") from exc
    if len(parts) == 3:
        if binding["resource"] == ANY:
            raise click.BadParameter(f"{value!r}: a NAME needs a resource, not *")
        if not is_valid_name(parts[2]):
            raise click.BadParameter(f"{value!r}: {parts[2]!r} is not a valid object name")
        binding["name"] = parts[2]
    return binding


def _bindings(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[dict[str, str]]:
    return [parse_binding(v) for v in values]


@create.command("group")
@click.argument("name")
@click.option("--member", "members", multiple=True, help="A user name (repeatable).")
@click.option("--description", default="")
@common
@click.pass_context
def create_group(
    ctx: click.Context,
    name: str,
    members: tuple[str, ...],
    description: str,
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create a group of users: --member USER ..."""
    spec: dict[str, Any] = {"members": list(members)}
    if description:
        spec["description"] = description
    _submit(ctx, "groups", _obj("Group", name, labels, spec), dry_run, fmt)


@create.command("rbac")
@click.argument("name")
@click.option(
    "--subject",
    "subjects",
    multiple=True,
    metavar="user:NAME|group:NAME",
    callback=_subjects,
    help="Who gets the bindings (repeatable).",
)
@click.option(
    "--binding",
    "bindings",
    multiple=True,
    metavar="ROLE:RESOURCE[:NAME]",
    callback=_bindings,
    help="A role on a kind (any spelling) or *, maybe one object only (repeatable).",
)
@click.option(
    "--operation",
    "operations",
    multiple=True,
    type=click.Choice(ACTIONS),
    help="An operation to allow: {role: run, action} (repeatable).",
)
@click.option("--description", default="")
@common
@click.pass_context
def create_rbac(
    ctx: click.Context,
    name: str,
    subjects: list[str],
    bindings: list[dict[str, str]],
    operations: tuple[str, ...],
    description: str,
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create an RbacDefinition: --subject user:alice --binding edit:servers --operation logs.

    A binding is ROLE:RESOURCE[:NAME]: ROLE view, create, edit, delete or run; RESOURCE a kind
    (plural, singular or short name), tokens, threads, metrics, openapi or *; NAME one object only.
    """
    spec: dict[str, Any] = {
        "subjects": subjects,
        "bindings": [*bindings, *({"role": "run", "action": op} for op in operations)],
    }
    if description:
        spec["description"] = description
    _submit(ctx, "rbacdefinitions", _obj("RbacDefinition", name, labels, spec), dry_run, fmt)


@create.command("user")
@click.argument("name")
@click.option("--display-name", default="", help="The name shown for the user.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin (else the user cannot log in yet).",
)
@common
@click.pass_context
def create_user(
    ctx: click.Context,
    name: str,
    display_name: str,
    password_stdin: bool,
    labels: tuple[str, ...],
    dry_run: bool,
    fmt: str | None,
) -> None:
    """Create a user: --password-stdin [--display-name TEXT]; passwords never go in arguments."""
    import sys

    spec: dict[str, Any] = {}
    if display_name:
        spec["displayName"] = display_name
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: stdin gave no password")
        spec["password"] = password
    _submit(ctx, "users", _obj("User", name, labels, spec), dry_run, fmt)
