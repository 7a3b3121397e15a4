"""The internal message format: what every adapter maps to and from, what the dispatcher routes,
what chat persists and what the OpenAI-compatible endpoint renders.

Frozen, slotted dataclasses rather than pydantic models: these objects are built per request and
per streamed chunk on the gateway's hot path, from data that is already valid (the routes'
pydantic schemas validated the caller's input; the adapters parse the backend's). A slotted
dataclass is built in about 0.7 µs against 1.2 µs for a validating pydantic model and 2.6 µs for
``model_construct``, and it validates nothing twice. Validation belongs at the edges.

Conventions the adapters keep:

- ``Message.content`` is text; ``""`` means none (an assistant turn made only of tool calls).
- ``ToolCall.arguments`` is the JSON text of an object, exactly as the model produced it.
- A stream yields ``TextDelta`` and ``ToolCallDelta`` events, then, once the backend said the
  answer is complete, one ``Finish``, then one ``Usage`` if the backend reported it. The first
  ``ToolCallDelta`` of an ``index`` carries the call's ``id`` and ``name``; later ones only
  argument fragments. ``AnswerBuilder`` folds such a stream back into an ``Answer``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]
FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. ``tool_calls`` only on assistant turns, ``tool_call_id`` only on tool turns."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", text)

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", text)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: Iterable[ToolCall] = ()) -> Message:
        return cls("assistant", text, tuple(tool_calls))

    @classmethod
    def tool(cls, tool_call_id: str, text: str) -> Message:
        """The result of the call ``tool_call_id``, fed back to the model."""
        return cls("tool", text, tool_call_id=tool_call_id)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is its JSON schema (an object schema)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NamedTool:
    """``tool_choice`` forcing a call of this one function."""

    name: str


ToolChoice: TypeAlias = Literal["auto", "none", "required"] | NamedTool

_NUMBERS = (("temperature", float), ("top_p", float))
_INTEGERS = ("max_tokens", "seed")


@dataclass(frozen=True, slots=True)
class Params:
    """Sampling parameters; ``None`` means "not set" (the backend's default applies).

    ``extra`` passes provider-specific fields through unchanged (``top_k``, ``min_p``,
    ``response_format``...): adapters merge them into the request body but never let them
    replace what the adapter itself sets (model, messages, tools, streaming).
    """

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def merged(self, override: Params) -> Params:
        """These parameters with every field that ``override`` sets taking its value (an Llm's
        defaults, then an agent's, then the call's)."""
        return Params(
            temperature=_first(override.temperature, self.temperature),
            top_p=_first(override.top_p, self.top_p),
            max_tokens=_first(override.max_tokens, self.max_tokens),
            stop=_first(override.stop, self.stop),
            seed=_first(override.seed, self.seed),
            extra={**self.extra, **override.extra} if override.extra else self.extra,
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Params:
        """Parameters from a ``defaultParams`` mapping; unknown keys go to ``extra``.

        Raises:
            ValueError: a known key holds a value of the wrong type (the message names it).
        """
        known: dict[str, Any] = {}
        for key, kind in _NUMBERS:
            value = values.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{key} must be a number, not {value!r}")
                known[key] = kind(value)
        for key in _INTEGERS:
            value = values.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{key} must be an integer, not {value!r}")
                known[key] = value
        stop = values.get("stop")
        if stop is not None:
            if isinstance(stop, str):
                stop = [stop]
            if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
                raise ValueError(f"stop must be a string or a list of strings, not {stop!r}")
            known["stop"] = tuple(stop)
        taken = {"stop", *_INTEGERS, *(key for key, _ in _NUMBERS)}
        extra = {k: v for k, v in values.items() if k not in taken}
        return cls(**known, extra=extra)


def _first(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


@dataclass(frozen=True, slots=True)
class Request:
    """One chat request to one backend; ``model`` is the backend's own model name.

    ``tool_choice`` ``None`` sends none (the backend's default: ``auto`` when tools are given);
    without tools no choice is sent at all.
    """

    model: str
    messages: Sequence[Message]
    tools: Sequence[Tool] = ()
    tool_choice: ToolChoice | None = None
    params: Params = field(default_factory=Params)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one answer; also the stream event that reports them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete answer: the assistant's message, why it ended and, if known, its cost."""

    message: Message
    finish_reason: FinishReason
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of tool call ``index`` (0, 1, ... in the order the model made them)."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason


StreamEvent: TypeAlias = TextDelta | ToolCallDelta | Finish | Usage


def events_of(answer: Answer) -> list[StreamEvent]:
    """A complete answer as the stream that would have carried it (for a backend that answered
    a streaming request in one piece, or a caller that wants events either way)."""
    events: list[StreamEvent] = []
    if answer.message.content:
        events.append(TextDelta(answer.message.content))
    for index, call in enumerate(answer.message.tool_calls):
        events.append(ToolCallDelta(index, call.arguments, call.id, call.name))
    events.append(Finish(answer.finish_reason))
    if answer.usage is not None:
        events.append(answer.usage)
    return events


class AnswerBuilder:
    """Folds stream events back into an ``Answer`` (to persist what was streamed)."""

    __slots__ = ("_calls", "_text", "finish_reason", "usage")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, tuple[str, str, list[str]]] = {}
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = self._calls.get(event.index)
            if call is None:
                call = self._calls[event.index] = (event.id or "", event.name or "", [])
            call[2].append(event.arguments)
        elif isinstance(event, Finish):
            self.finish_reason = event.reason
        else:
            self.usage = event

    def message(self) -> Message:
        """What has arrived so far, complete or not (a broken stream's partial turn)."""
        calls = (
            ToolCall(call_id, name, "".join(parts))
            for _, (call_id, name, parts) in sorted(self._calls.items())
        )
        return Message.assistant("".join(self._text), calls)

    def answer(self) -> Answer:
        """The complete answer.

        Raises:
            ValueError: the stream has not finished.
        """
        if self.finish_reason is None:
            raise ValueError("the stream has not finished")
        return Answer(self.message(), self.finish_reason, self.usage)


def collect(events: Iterable[StreamEvent]) -> Answer:
    """The answer carried by ``events`` (see ``AnswerBuilder``)."""
    builder = AnswerBuilder()
    for event in events:
        builder.add(event)
    return builder.answer()


def arguments_object(call: ToolCall) -> dict[str, Any]:
    """``call.arguments`` parsed; empty text counts as ``{}``.

    Raises:
        ValueError: the arguments are not the JSON text of an object.
    """
    if not call.arguments.strip():
        return {}
    try:
        value = json.loads(call.arguments)
    except ValueError as exc:
        raise ValueError(f"tool call {call.id!r} ({call.name}): arguments are not JSON") from exc
    if not isinstance(value, dict):
        raise ValueError(f"tool call {call.id!r} ({call.name}): arguments are not a JSON object")
    return value
