"""YAML in and out: multi-document streams with line numbers, and errors with file:line:col."""

from __future__ import annotations

import pytest

from mcpctl.errors import InvalidInput
from mcpctl.resources.yamlcodec import dump, dump_all, load_documents

STREAM = """\
# leading comment
apiVersion: mcpctl/v1
kind: Secret
metadata: {name: a}
---
---
apiVersion: mcpctl/v1
kind: Server
metadata:
  name: b
...
---
kind: Project
"""


def test_every_document_is_loaded_with_the_line_it_starts_on() -> None:
    documents = load_documents(STREAM, "all.yaml")

    assert [d.data["kind"] for d in documents] == ["Secret", "Server", "Project"]
    assert [d.line for d in documents] == [2, 7, 13]
    assert [d.where for d in documents] == ["all.yaml:2", "all.yaml:7", "all.yaml:13"]


def test_empty_documents_and_empty_streams_are_skipped() -> None:
    assert load_documents("", "empty.yaml") == []
    assert load_documents("---\n---\n# only a comment\n", "empty.yaml") == []


def test_a_syntax_error_names_file_line_and_column() -> None:
    text = "kind: Server\nmetadata:\n  name: a\n   bad: indent\n"

    with pytest.raises(InvalidInput) as info:
        load_documents(text, "srv.yaml")

    assert info.value.message.startswith("srv.yaml:4:")
    line, column = info.value.message.split(":")[1:3]
    assert (int(line), int(column)) == (4, 7)
    assert "invalid YAML" in info.value.message


def test_a_syntax_error_in_a_later_document_points_at_its_line() -> None:
    text = "kind: A\n---\nkind: B\n---\nkind: [C\n"

    with pytest.raises(InvalidInput) as info:
        load_documents(text, "multi.yaml")

    assert info.value.message.startswith("multi.yaml:6:")


def test_tabs_and_unsafe_tags_are_refused() -> None:
    for text in ("a:\n\tb: 1\n", "a: !!python/object/apply:os.system [echo]\n"):
        with pytest.raises(InvalidInput):
            load_documents(text, "x.yaml")


def test_dump_keeps_key_order_and_round_trips() -> None:
    data = {"kind": "Server", "apiVersion": "mcpctl/v1", "spec": {"args": ["b", "a"], "x": "ü"}}

    text = dump(data)

    assert text.index("kind") < text.index("apiVersion")
    assert "ü" in text
    assert load_documents(text, "x")[0].data == data


def test_dump_all_writes_documents_that_load_back_in_order() -> None:
    documents = [{"kind": "A", "n": 1}, {"kind": "B", "n": 2}]

    loaded = load_documents(dump_all(documents), "x")

    assert [d.data for d in loaded] == documents
    assert [d.line for d in loaded] == [1, 4]
