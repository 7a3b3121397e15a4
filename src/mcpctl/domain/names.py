"""Object names: one rule for every kind (a DNS-1123 label, as in Kubernetes)."""

from __future__ import annotations

import re

from mcpctl.errors import InvalidInput

NAME_RULE = (
    "lowercase letters, digits and '-', starting and ending with a letter or digit, "
    "at most 63 characters"
)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME_LENGTH = 63


def is_valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name) is not None


def check_name(name: str, field: str = "metadata.name") -> str:
    """Return ``name`` if it follows the rule.

    Raises:
        InvalidInput: naming the field and the rule.
    """
    if not is_valid_name(name):
        raise InvalidInput(
            f"{field}: invalid name {name!r}: use {NAME_RULE}",
            details={"errors": [{"path": field, "message": f"must be {NAME_RULE}"}]},
        )
    return name
