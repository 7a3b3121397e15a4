"""The system block: systemPrompt, then the agent's prompts, then the personality's, each group
by priority (higher first, ties by name), a prompt once, blank texts left out."""

from __future__ import annotations

from mcpctl.domain.system_block import Part, PromptText, system_block


def test_groups_come_in_order_each_by_priority_then_name() -> None:
    block = system_block(
        "Sys.",
        [PromptText("b", "B.", 5), PromptText("a", "A.", 5), PromptText("z", "Z.", 9)],
        [PromptText("low", "Low.", 1), PromptText("high", "High.", 10)],
    )

    assert [(p.source, p.name) for p in block.parts] == [
        ("agent", None),
        ("prompt", "z"),
        ("prompt", "a"),
        ("prompt", "b"),
        ("personality", "high"),
        ("personality", "low"),
    ]
    assert block.text == "Sys.\n\nZ.\n\nA.\n\nB.\n\nHigh.\n\nLow."


def test_a_prompt_of_both_groups_appears_once_in_the_agent_group() -> None:
    block = system_block("", [PromptText("shared", "S.", 3)], [PromptText("shared", "S.", 10)])

    assert block.parts == (Part("prompt", "S.", "shared", 3),)


def test_blank_texts_are_left_out() -> None:
    block = system_block("  ", [PromptText("empty", " \n", 5)], [])

    assert block.parts == ()
    assert block.text == ""
