"""Output formats of `get`: table, wide, yaml, json, name."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mcpctl.resources.kinds import KindInfo, by_kind

FORMATS = ("table", "wide", "yaml", "json", "name")


def dig(obj: Any, path: str) -> Any:
    """The value at ``path`` (``spec.llm``); ``spec.prompts[].name`` maps over a list."""
    head, sep, rest = path.partition("[].")
    for part in head.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    if sep:
        return [dig(item, rest) for item in obj] if isinstance(obj, list) else None
    return obj


def cell(value: Any) -> str:
    if value is None or value in ([], ""):
        return "<none>"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def age(created: str | None, now: datetime | None = None) -> str:
    """kubectl-style age: 45s, 12m, 3h, 5d, 2y."""
    if not created:
        return "<unknown>"
    then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _value(obj: dict[str, Any], path: str, default: object) -> Any:
    value = dig(obj, path)
    return default if value is None else value


def _labels(obj: dict[str, Any]) -> str:
    labels = obj["metadata"].get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "<none>"


def table(
    info: KindInfo,
    objects: list[dict[str, Any]],
    *,
    wide: bool,
    headers: bool,
    prefix: bool = False,
) -> str:
    columns = [c for c in info.columns if wide or not c.wide_only]
    head = ["NAME", *[c.header for c in columns], "AGE", *(["LABELS"] if wide else [])]
    rows = [head] if headers else []
    for obj in objects:
        name = obj["metadata"]["name"]
        rows.append(
            [
                f"{info.singular}/{name}" if prefix else name,
                *[cell(_value(obj, c.path, c.default)) for c in columns],
                age(obj["metadata"].get("createdAt")),
                *([_labels(obj)] if wide else []),
            ]
        )
    return aligned(rows)


def aligned(rows: list[list[str]]) -> str:
    """Rows as columns padded to their widest cell, three spaces apart; "" for no rows."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return "\n".join(lines) + "\n"


def as_list(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "mcpctl/v1", "kind": "List", "items": objects}


def render_records(
    items: list[dict[str, Any]],
    fmt: str,
    *,
    single: bool,
    name: Callable[[dict[str, Any]], str],
    table: Callable[[list[dict[str, Any]], bool], str],
) -> str:
    """Records that are not objects of a kind (instances, threads) in one of FORMATS:
    ``name`` gives one's ``-o name`` line, ``table`` renders them (wide or not)."""
    if fmt == "json":
        return json.dumps(items[0] if single else as_list(items), indent=2) + "\n"
    if fmt == "yaml":
        from mcpctl.resources.yamlcodec import dump

        return dump(items[0] if single else as_list(items))
    if fmt == "name":
        return "".join(f"{name(item)}\n" for item in items)
    return table(items, fmt == "wide")


def render(objects: list[dict[str, Any]], fmt: str, *, single: bool, headers: bool = True) -> str:
    """Render objects (of one or several kinds) in one of FORMATS."""
    if fmt == "json":
        return json.dumps(objects[0] if single else as_list(objects), indent=2) + "\n"
    if fmt == "yaml":
        from mcpctl.resources.yamlcodec import dump

        return dump(objects[0] if single else as_list(objects))
    if fmt == "name":
        return "".join(f"{by_kind(o['kind']).singular}/{o['metadata']['name']}\n" for o in objects)
    kinds: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        kinds.setdefault(obj["kind"], []).append(obj)
    several = len(kinds) > 1
    return "\n".join(
        table(by_kind(kind), objs, wide=fmt == "wide", headers=headers, prefix=several)
        for kind, objs in kinds.items()
    )
