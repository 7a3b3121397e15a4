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


def describe_text(info: KindInfo, obj: dict[str, Any], usage: dict[str, Any]) -> str:
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
    out.append(_refs("Used by", usage.get("usedBy", [])))
    out.append(_refs("Uses", usage.get("uses", [])))
    return "".join(out)
