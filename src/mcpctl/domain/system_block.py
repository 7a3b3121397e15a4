"""The system block an agent sends at the start of every chat: which texts, in which order.

In order: the agent's ``systemPrompt``; then the agent's own prompts (``Prompt.agent``); then
the chosen personality's prompts (the one asked for, else the agent's default). Within each
group, higher priority first (priorities run from 1, lowest, to 10, highest, as for every
prompt), ties by prompt name. A personality's binding may override the prompt's own priority.
A prompt already in the block (an agent prompt a personality names too) appears once, where it
came first. Texts are joined by a blank line; blank texts are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Source = Literal["agent", "prompt", "personality"]
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class PromptText:
    """A prompt as it takes part: its name, text and (effective) priority."""

    name: str
    content: str
    priority: int


@dataclass(frozen=True)
class Part:
    """One text of the block: the agent's systemPrompt, an agent prompt or a personality's."""

    source: Source
    content: str
    name: str | None = None
    priority: int | None = None


@dataclass(frozen=True)
class SystemBlock:
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return SEPARATOR.join(part.content for part in self.parts)


def by_priority(prompts: Iterable[PromptText]) -> list[PromptText]:
    """Higher priority first, ties by name."""
    return sorted(prompts, key=lambda p: (-p.priority, p.name))


def system_block(
    system_prompt: str,
    agent_prompts: Iterable[PromptText],
    personality_prompts: Iterable[PromptText] = (),
) -> SystemBlock:
    """The block, from the agent's systemPrompt and its two groups of prompts (any order)."""
    parts: list[Part] = []
    if system_prompt.strip():
        parts.append(Part("agent", system_prompt))
    seen: set[str] = set()
    groups: tuple[tuple[Source, Iterable[PromptText]], ...] = (
        ("prompt", agent_prompts),
        ("personality", personality_prompts),
    )
    for source, prompts in groups:
        for prompt in by_priority(prompts):
            if prompt.name in seen or not prompt.content.strip():
                continue
            seen.add(prompt.name)
            parts.append(Part(source, prompt.content, prompt.name, prompt.priority))
    return SystemBlock(tuple(parts))
