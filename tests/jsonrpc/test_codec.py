"""protocol.encode / decode: orjson's speed, ``json``'s results."""

from __future__ import annotations

import json

import pytest

from mcpctl.jsonrpc import protocol

CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {"name": "echo", "arguments": {"text": "héllo ✓", "n": 3, "x": 0.1, "ok": None}},
}


def test_encode_is_compact_utf8_json_as_json_writes_it() -> None:
    expected = json.dumps(CALL, separators=(",", ":"), ensure_ascii=False).encode()
    assert protocol.encode(CALL) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"id": 2**70},  # past 64 bits: orjson refuses it
        {1: "a key that is not a string"},
    ],
)
def test_encode_takes_what_orjson_refuses_as_json_does(value: dict[object, object]) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert protocol.encode(value) == expected


def test_decode_reads_what_json_reads() -> None:
    data = json.dumps(CALL).encode()
    assert protocol.decode(data) == CALL
    assert protocol.decode(data.decode()) == CALL


@pytest.mark.parametrize(
    "text",
    [
        '{"amount": 123456789012345678901234567890}',  # orjson would make it a float
        '{"amount": -98765432109876543210}',
        '{"id": 18446744073709551616}',  # 2**64
        '["\\ud800"]',  # a lone surrogate: orjson refuses it
        '{"big": 1e400}',
    ],
)
def test_decode_keeps_every_value_json_keeps(text: str) -> None:
    assert protocol.decode(text.encode()) == json.loads(text)
    assert protocol.decode(text) == json.loads(text)
    assert repr(protocol.decode(text)) == repr(json.loads(text))


def test_decode_fails_with_jsons_error() -> None:
    with pytest.raises(ValueError, match="Expecting value"):
        protocol.decode(b"not json")


def test_parse_message_keeps_a_long_integer_argument_exact() -> None:
    line = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n":12345678901234567890123}}'
    assert protocol.parse_message(line)["params"]["n"] == 12345678901234567890123
