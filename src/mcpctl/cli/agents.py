"""What the CLI adds for agents: `--agent A` (short personality names, and lists filtered to
one agent's prompts and personalities), and the Personalities and System block sections of
`describe agent`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient
    from mcpctl.resources.kinds import KindInfo

# Kinds whose objects belong to an agent through spec.agent.
AGENT_OWNED = ("Prompt", "Personality")


def check_agent_filter(infos: list[KindInfo], agent: str | None) -> None:
    """``--agent`` goes with prompts and personalities (threads have their own handling).

    Raises:
        click.UsageError: for another kind.
    """
    if agent is None:
        return
    other = [i.plural for i in infos if i.kind not in AGENT_OWNED]
    if other:
        raise click.UsageError(
            f"--agent goes with prompts, personalities and threads, not {', '.join(other)}"
        )


def qualify(info: KindInfo, name: str, agent: str | None) -> str:
    """A personality's short name with ``--agent A`` → ``A.NAME``; other names unchanged."""
    if agent and info.scope is not None and "." not in name:
        return f"{agent}.{name}"
    return name


def of_agent(objects: list[dict[str, Any]], agent: str | None) -> list[dict[str, Any]]:
    """Only the objects that belong to ``agent`` (all of them without one)."""
    if agent is None:
        return objects
    return [o for o in objects if (o.get("spec") or {}).get("agent") == agent]


def _personalities(client: McpdClient, agent: str, default: str | None) -> str:
    from mcpctl.resources.personalities import split_name

    items = of_agent(list(client.iter_objects("personalities")), agent)
    if not items:
        return "Personalities:     <none>\n"
    items.sort(key=lambda o: (-int(o["spec"].get("priority", 5)), o["metadata"]["name"]))
    rows = [["NAME", "PRIORITY", "PROMPTS", "DESCRIPTION"]]
    for item in items:
        short = split_name(item["metadata"]["name"])[1]
        prompts = ",".join(b["name"] for b in item["spec"].get("prompts") or []) or "<none>"
        rows.append(
            [
                short + (" (default)" if short == default else ""),
                str(item["spec"].get("priority", 5)),
                prompts,
                item["spec"].get("description") or "",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)
    return "Personalities:\n" + "".join(f"  {line.rstrip()}\n" for line in lines)


def _part_title(part: dict[str, Any]) -> str:
    if part["source"] == "agent":
        return "# systemPrompt"
    owner = "agent prompt" if part["source"] == "prompt" else "personality prompt"
    return f"# {owner} {part['name']} (priority {part['priority']})"


def system_block_text(block: dict[str, Any]) -> str:
    """The block as it will be sent, each part under a ``#`` line naming where it comes from
    (those lines are not sent; the parts are joined by a blank line)."""
    personality = block.get("personality")
    title = f"System block (personality {personality}):" if personality else "System block:"
    if not block["parts"]:
        return f"{title} <none>\n"
    out = [title + "\n"]
    for part in block["parts"]:
        out.append(f"  {_part_title(part)}\n")
        out.extend(f"  {line}".rstrip() + "\n" for line in part["content"].splitlines())
    return "".join(out)


def agent_sections(client: McpdClient, agent: dict[str, Any]) -> str:
    """The Personalities and System block sections of `describe agent`."""
    name = agent["metadata"]["name"]
    block = client.request("GET", f"/api/v1/agents/{quote(name, safe='')}/system-block")
    default = (agent.get("spec") or {}).get("defaultPersonality")
    return _personalities(client, name, default) + system_block_text(block)
