"""The one name rule for every kind (a DNS-1123 label)."""

from __future__ import annotations

import pytest

from mcpctl.domain.names import NAME_RULE, check_name, is_valid_name
from mcpctl.errors import InvalidInput


@pytest.mark.parametrize("name", ["a", "time", "brave-search", "a1", "1a", "x" * 63, "a-b-c"])
def test_valid_names_pass(name: str) -> None:
    assert is_valid_name(name)
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "A", "Time", "-a", "a-", "a_b", "a.b", "a b", "x" * 64, "tíme", "a\n"]
)
def test_invalid_names_raise_invalid_input_with_the_rule(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(InvalidInput) as info:
        check_name(name)

    assert NAME_RULE in info.value.message
    assert info.value.details["errors"] == [
        {"path": "metadata.name", "message": f"must be {NAME_RULE}"}
    ]


def test_check_name_names_the_field_it_was_given() -> None:
    with pytest.raises(InvalidInput) as info:
        check_name("Bad", field="spec.servers[0]")

    assert info.value.message.startswith("spec.servers[0]: ")
    assert info.value.details["errors"][0]["path"] == "spec.servers[0]"
