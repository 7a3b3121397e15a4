"""The readable form of one object for `describe`."""

from __future__ import annotations

from typing import Any

from mcpctl.cli.printers import age
from mcpctl.resources.kinds import KindInfo
from mcpctl.resources.yamlcodec import dump


def _indent(text: str, by: int = 2) -> str:
    pad = " " * by
    return "".join(pad + line + "\n" for line in text.rstrip("\n").splitlines())


def _spec_text(info: KindInfo, obj: dict[str, Any]) -> str:
    spec = obj.get("spec") or {}
    if info.kind == "Secret":
        data = spec.get("data") or {}
        lines = [f"{k}: {'<hidden>' if v is None else v}" for k, v in data.items()]
        return "Data:\n" + (_indent("\n".join(lines)) if lines else "  <none>\n")
    return "Spec:\n" + (_indent(dump(spec)) if spec else "  <none>\n")


def _refs(title: str, refs: list[dict[str, Any]]) -> str:
    if not refs:
        return f"{title}: <none>\n"
    rows = [f"{r['kind'].lower()}/{r['name']}" for r in refs]
    width = max(len(r) for r in rows)
    return f"{title}:\n" + "".join(
        f"  {row.ljust(width)}  ({r['field']})\n" for row, r in zip(rows, refs, strict=True)
    )


def _permission_row(p: dict[str, Any]) -> list[str]:
    if p.get("action"):
        return [p["role"], f"action:{p['action']}", "-", p["via"], p["definition"]]
    return [p["role"], p["resource"], p.get("name") or "*", p["via"], p["definition"]]


def _permissions(permissions: list[dict[str, Any]]) -> str:
    """Each grant with where it comes from; NAME ``*`` is every object of the resource."""
    if not permissions:
        return "Permissions: <none>\n"
    rows = [["ROLE", "RESOURCE", "NAME", "VIA", "DEFINITION"]]
    rows += [_permission_row(p) for p in permissions]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)
    return "Permissions:\n" + "".join(f"  {line.rstrip()}\n" for line in lines)


def _pool_row(member: dict[str, Any]) -> list[str]:
    failures = member.get("recentFailures") or []
    last = failures[-1]["error"] if failures else "-"
    return [
        member["name"],
        member.get("status") or "active",
        member.get("coolingDownUntil") or "-",
        str(len(failures)),
        str(member.get("inFlight", 0)),
        last if len(last) <= 60 else last[:57] + "...",
    ]


def _pool(pool: dict[str, Any]) -> str:
    """The Llm's pool as this mcpd sees it: members, status, cooldowns, failures, in flight."""
    rows = [["MEMBER", "STATUS", "COOLING DOWN UNTIL", "FAILURES", "IN FLIGHT", "LAST FAILURE"]]
    rows += [_pool_row(m) for m in pool.get("members") or []]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)
    return f"Pool:              {pool['pool']}\n" + "".join(
        f"  {line.rstrip()}\n" for line in lines
    )


def describe_text(
    info: KindInfo,
    obj: dict[str, Any],
    usage: dict[str, Any],
    permissions: list[dict[str, Any]] | None = None,
    pool: dict[str, Any] | None = None,
) -> str:
    """The describe page; ``permissions`` (users and groups) adds a Permissions table, ``pool``
    (Llms) a Pool block."""
    meta = obj["metadata"]
    labels = ", ".join(f"{k}={v}" for k, v in (meta.get("labels") or {}).items()) or "<none>"
    out = [
        f"Name:              {meta['name']}\n",
        f"Kind:              {info.kind}\n",
        f"Labels:            {labels}\n",
        f"UID:               {meta.get('uid')}\n",
        f"Resource version:  {meta.get('resourceVersion')}\n",
        f"Created:           {meta.get('createdAt')} ({age(meta.get('createdAt'))} ago)\n",
        f"Updated:           {meta.get('updatedAt')}\n",
        _spec_text(info, obj),
    ]
    status = obj.get("status") or {}
    if status.get("effective"):
        out.append("Effective (template applied):\n" + _indent(dump(status["effective"])))
    for warning in status.get("warnings") or []:
        out.append(f"Warning:           {warning}\n")
    out.append(_refs("Used by", usage.get("usedBy", [])))
    out.append(_refs("Uses", usage.get("uses", [])))
    if permissions is not None:
        out.append(_permissions(permissions))
    if pool is not None:
        out.append(_pool(pool))
    return "".join(out)
