"""The internal message format: parameters layered from defaults, and streams folded back into
answers."""

from __future__ import annotations

import pytest

from mcpctl.mcpd.llm.messages import (
    Answer,
    AnswerBuilder,
    Finish,
    Message,
    Params,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    arguments_object,
    collect,
    events_of,
)


def test_params_from_mapping_sorts_known_fields_from_pass_through_extras() -> None:
    params = Params.from_mapping(
        {"temperature": 1, "max_tokens": 64, "stop": "END", "seed": 7, "top_k": 40}
    )

    assert params == Params(
        temperature=1.0, max_tokens=64, stop=("END",), seed=7, extra={"top_k": 40}
    )
    assert isinstance(params.temperature, float)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": True}, "top_p"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"seed": "7"}, "seed"),
        ({"stop": ["a", 1]}, "stop"),
    ],
)
def test_params_from_mapping_names_the_field_of_the_wrong_type(
    values: dict[str, object], key: str
) -> None:
    with pytest.raises(ValueError, match=f"^{key} must be"):
        Params.from_mapping(values)


def test_merged_params_take_each_field_the_override_sets() -> None:
    llm = Params(temperature=0.2, max_tokens=512, extra={"top_k": 40, "min_p": 0.1})
    agent = Params(max_tokens=128, stop=("\n\n",), extra={"top_k": 20})
    call = Params(temperature=0.9)

    assert llm.merged(agent).merged(call) == Params(
        temperature=0.9, max_tokens=128, stop=("\n\n",), extra={"top_k": 20, "min_p": 0.1}
    )


def test_a_stream_folds_back_into_the_answer_it_carried() -> None:
    answer = Answer(
        Message.assistant(
            "Let me look.",
            [ToolCall("call_1", "get_time", '{"tz": "UTC"}'), ToolCall("call_2", "noop", "{}")],
        ),
        "tool_calls",
        Usage(10, 5, 15),
    )

    assert collect(events_of(answer)) == answer


def test_tool_call_deltas_assemble_by_index_in_any_interleaving() -> None:
    builder = AnswerBuilder()
    events: list[StreamEvent] = [
        TextDelta("Checking"),
        ToolCallDelta(1, '{"b"', "call_b", "second"),
        ToolCallDelta(0, "", "call_a", "first"),
        ToolCallDelta(0, '{"a": 1}'),
        ToolCallDelta(1, ": 2}"),
        TextDelta("..."),
        Finish("tool_calls"),
    ]
    for event in events:
        builder.add(event)

    assert builder.answer() == Answer(
        Message.assistant(
            "Checking...",
            [ToolCall("call_a", "first", '{"a": 1}'), ToolCall("call_b", "second", '{"b": 2}')],
        ),
        "tool_calls",
    )


def test_an_unfinished_stream_gives_its_partial_message_but_no_answer() -> None:
    builder = AnswerBuilder()
    builder.add(TextDelta("Half an"))

    assert builder.message() == Message.assistant("Half an")
    with pytest.raises(ValueError, match="not finished"):
        builder.answer()


def test_arguments_object_parses_objects_and_refuses_anything_else() -> None:
    assert arguments_object(ToolCall("c", "f", '{"x": [1]}')) == {"x": [1]}
    assert arguments_object(ToolCall("c", "f", "  ")) == {}
    with pytest.raises(ValueError, match="not a JSON object"):
        arguments_object(ToolCall("c", "f", "[1, 2]"))
    with pytest.raises(ValueError, match="not JSON"):
        arguments_object(ToolCall("c", "f", '{"x": '))
