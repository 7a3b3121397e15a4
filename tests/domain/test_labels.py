"""Label selectors (parsing and matching) and label rules, without a database."""

from __future__ import annotations

import pytest

from mcpctl.domain.labels import Requirement, check_labels, parse_selector, selector_matches
from mcpctl.errors import InvalidInput


def test_empty_selector_has_no_requirements() -> None:
    assert parse_selector(None) == []
    assert parse_selector("") == []


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("team=infra", [Requirement("team", "eq", ("infra",))]),
        ("team==infra", [Requirement("team", "eq", ("infra",))]),
        ("team != infra", [Requirement("team", "ne", ("infra",))]),
        ("team", [Requirement("team", "exists")]),
        ("!team", [Requirement("team", "absent")]),
        ("team in (a, b)", [Requirement("team", "in", ("a", "b"))]),
        ("team notin (a,b)", [Requirement("team", "notin", ("a", "b"))]),
        ("mcpctl.io/source=catalog", [Requirement("mcpctl.io/source", "eq", ("catalog",))]),
        ("team=", [Requirement("team", "eq", ("",))]),
        (
            "a in (x,y),b!=z,!c",
            [
                Requirement("a", "in", ("x", "y")),
                Requirement("b", "ne", ("z",)),
                Requirement("c", "absent"),
            ],
        ),
    ],
)
def test_selectors_parse_as_kubectl_writes_them(selector: str, expected: list[Requirement]) -> None:
    assert parse_selector(selector) == expected


@pytest.mark.parametrize(
    "selector", ["=x", "team in x", "Bad Key=x", "team=a=b", "!", "team=bad value", "-x=1"]
)
def test_unreadable_selectors_raise_invalid_input_naming_the_term(selector: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_selector(selector)

    assert info.value.code == "invalid_input"
    assert "labelSelector" in info.value.message


LABELS = {"team": "infra", "tier": "1"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("team=infra", True),
        ("team=web", False),
        ("team!=web", True),
        ("owner!=me", True),
        ("tier", True),
        ("owner", False),
        ("!owner", True),
        ("!tier", False),
        ("team in (web,infra)", True),
        ("team in (web)", False),
        ("owner in (me)", False),
        ("team notin (web)", True),
        ("team notin (infra)", False),
        ("owner notin (me)", True),
        ("team=infra,tier=2", False),
        ("team=infra,tier=1", True),
    ],
)
def test_selectors_match_labels(selector: str, matches: bool) -> None:
    assert selector_matches(parse_selector(selector), LABELS) is matches


def test_valid_labels_pass() -> None:
    check_labels({"team": "infra", "mcpctl.io/source": "catalog", "empty": "", "a_b.c-d": "X.y"})


@pytest.mark.parametrize(
    ("labels", "path"),
    [
        ({"bad key": "x"}, "metadata.labels"),
        ({"-lead": "x"}, "metadata.labels"),
        ({"UPPER.example/k": "x"}, "metadata.labels"),
        ({"k": "a" * 64}, "metadata.labels.k"),
        ({"k": "bad value"}, "metadata.labels.k"),
        ({"k": "-x"}, "metadata.labels.k"),
    ],
)
def test_bad_labels_raise_invalid_input_with_their_path(labels: dict[str, str], path: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_labels(labels)

    assert info.value.details["errors"][0]["path"] == path
