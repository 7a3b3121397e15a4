"""Label selectors as kubectl writes them: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``,
``k in (a,b)``, ``k notin (a,b)``, joined by commas."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mcpctl.errors import InvalidInput

Operator = Literal["eq", "ne", "exists", "absent", "in", "notin"]

_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.op:
            case "eq" | "in":
                return present and value in self.values
            case "ne" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case "absent":
                return not present


def check_labels(labels: dict[str, str], field: str = "metadata.labels") -> None:
    """Raises:
    InvalidInput: for a key or value that breaks the Kubernetes label rules."""
    for key, value in labels.items():
        if len(key) > 316 or not _LABEL_KEY.fullmatch(key):
            raise _invalid(field, f"invalid label key {key!r}")
        if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
            raise _invalid(f"{field}.{key}", f"invalid label value {value!r}")


def _invalid(path: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"{path}: {message}", details={"errors": [{"path": path, "message": message}]}
    )


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]


def _parse_term(term: str) -> Requirement:
    if m := _SET.match(term):
        values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
        return Requirement(m.group(1), "in" if m.group(2) == "in" else "notin", values)
    for token, op in (("!=", "ne"), ("==", "eq"), ("=", "eq")):
        if token in term:
            key, _, value = term.partition(token)
            return Requirement(key.strip(), op, (value.strip(),))  # type: ignore[arg-type]
    if term.startswith("!"):
        return Requirement(term[1:].strip(), "absent")
    return Requirement(term, "exists")


def parse_selector(selector: str | None) -> list[Requirement]:
    """Parse a label selector.

    Raises:
        InvalidInput: naming the term that cannot be read.
    """
    if not selector:
        return []
    requirements = []
    for term in _split_terms(selector):
        req = _parse_term(term)
        if not _LABEL_KEY.fullmatch(req.key) or not all(
            _LABEL_VALUE.fullmatch(v) for v in req.values
        ):
            raise InvalidInput(
                f"labelSelector: cannot parse {term!r} (use k=v, k!=v, k, !k, k in (a,b))"
            )
        requirements.append(req)
    return requirements


def selector_matches(requirements: list[Requirement], labels: dict[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)
