"""The kinds registry: lookup by any name, and every kind's spec module wired in."""

from __future__ import annotations

import pytest

from mcpctl.errors import InvalidInput
from mcpctl.resources.kinds import KINDS, by_kind, lookup


@pytest.mark.parametrize("word", ["servers", "server", "Server", "srv", "SRV", " servers "])
def test_lookup_finds_a_kind_by_any_of_its_names(word: str) -> None:
    assert lookup(word).kind == "Server"


def test_lookup_of_an_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        lookup("widgets")

    for info_ in KINDS:
        assert info_.plural in info.value.message


def test_by_kind_is_exact() -> None:
    assert by_kind("Template").plural == "templates"
    with pytest.raises(InvalidInput):
        by_kind("template")


def test_names_are_unique_across_kinds() -> None:
    names = [name for info in KINDS for name in set(info.names)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_every_kind_has_a_spec_model_and_references(info: object) -> None:
    from mcpctl.resources.kinds import KindInfo
    from mcpctl.resources.references import Reference

    assert isinstance(info, KindInfo)
    required: dict[str, dict[str, str]] = {
        "Prompt": {"content": "x"},
        "Llm": {"provider": "openai", "url": "http://127.0.0.1:8080/v1", "model": "m"},
        "Agent": {"llm": "gpt"},
        "Personality": {"agent": "helper"},
    }
    # What the required fields themselves refer to.
    expected = {
        "Agent": [Reference("Llm", "gpt", "spec.llm")],
        "Personality": [Reference("Agent", "helper", "spec.agent", on_delete="cascade")],
    }
    spec = info.spec_model.model_validate(required.get(info.kind, {}))
    assert info.references_of("x", spec) == expected.get(info.kind, [])


def test_apply_order_puts_what_is_referenced_first() -> None:
    order = [info.kind for info in sorted(KINDS, key=lambda i: i.apply_order)]

    assert order.index("Secret") < order.index("Template") < order.index("Server")
    assert order.index("Server") < order.index("Project") < order.index("Prompt")
    assert order.index("Llm") < order.index("Agent") < order.index("Prompt")
    assert order.index("Project") < order.index("Agent") < order.index("Personality")
    assert order.index("Prompt") < order.index("Personality")
