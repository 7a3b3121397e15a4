"""YAML in and out: multi-document files with line numbers, and stable output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from mcpctl.errors import InvalidInput

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class Document:
    """One YAML document of a file, with where it starts (1-based line)."""

    source: str
    line: int
    data: Any

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def load_documents(text: str, source: str) -> list[Document]:
    """Parse every document of a YAML stream; empty documents are skipped.

    Raises:
        InvalidInput: with ``source:line:column`` of the first syntax error.
    """
    loader = _Loader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is not None:
                documents.append(Document(source, node.start_mark.line + 1, data))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        raise InvalidInput(f"{where}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return documents


def dump(data: Any) -> str:
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )


def dump_all(documents: list[Any]) -> str:
    return yaml.dump_all(
        documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
