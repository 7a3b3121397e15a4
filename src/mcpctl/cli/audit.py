"""`get audit`: the audit trail, newest first (the `audit` kind is read-only, outside the
kinds registry, so `get` hands it to this module)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcpctl.client.http import McpdClient

NAMES = ("audit", "auditevents", "auditevent")
COLUMNS = (
    ("TIME", "time"),
    ("USER", "user"),
    ("VERB", "verb"),
    ("KIND", "kind"),
    ("NAME", "name"),
    ("OUTCOME", "outcome"),
    ("CODE", "code"),
)


def is_audit(args: tuple[str, ...]) -> bool:
    return bool(args) and args[0].lower() in NAMES


def _table(events: list[dict[str, Any]], headers: bool) -> str:
    rows = [[h for h, _ in COLUMNS]] if headers else []
    for event in events:
        row = [str(event.get(key) or ("<none>" if key != "code" else "")) for _, key in COLUMNS]
        if event.get("impersonatedBy"):
            row[1] += f" (impersonated by {event['impersonatedBy']})"
        rows.append(row)
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return "\n".join(lines) + "\n"


def render_audit(events: list[dict[str, Any]], fmt: str, *, headers: bool = True) -> str:
    """Audit events as a table (TIME USER VERB KIND NAME OUTCOME CODE; USER says who
    impersonated them, if anyone did), json or yaml."""
    listed = {"apiVersion": "mcpctl/v1", "kind": "AuditEventList", "items": events}
    if fmt == "json":
        return json.dumps(listed, indent=2) + "\n"
    if fmt == "yaml":
        from mcpctl.resources.yamlcodec import dump

        return dump(listed)
    return _table(events, headers)


def fetch_audit(
    client: McpdClient,
    *,
    since: str | None,
    user: str | None,
    kind: str | None,
    chunk_size: int,
) -> list[dict[str, Any]]:
    return list(client.iter_audit_events(since=since, user=user, kind=kind, chunk_size=chunk_size))
