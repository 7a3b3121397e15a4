"""Reading ``-f`` inputs (files, directories, stdin) into objects ready to send."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcpctl.errors import InvalidInput
from mcpctl.resources.kinds import KINDS, KindInfo, by_kind
from mcpctl.resources.yamlcodec import Document, load_documents

API_VERSION = "mcpctl/v1"
_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
_SERVER_SET = ("uid", "resourceVersion", "createdAt", "updatedAt")
_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Manifest:
    info: KindInfo
    obj: dict[str, Any]
    where: str

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def ref(self) -> str:
        return f"{self.info.singular}/{self.name}"


def read_documents(sources: tuple[str, ...]) -> list[Document]:
    """Every YAML/JSON document in the given files, directories (sorted) and ``-`` (stdin).

    Raises:
        InvalidInput: for a missing path or a syntax error (with file and line).
    """
    documents: list[Document] = []
    for source in sources:
        if source == "-":
            documents += load_documents(sys.stdin.read(), "<stdin>")
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise InvalidInput(f"{source}: no such file or directory")
        for file in files:
            documents += load_documents(file.read_text(), str(file))
    return documents


def _manifest(data: Any, where: str, *, keep_version: bool) -> Manifest:
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{where}: a document must be a mapping with apiVersion, kind, metadata, spec"
        )
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise InvalidInput(
            f"{where}: {unknown[0]}: unknown field (allowed: {', '.join(sorted(_TOP_LEVEL))})"
        )
    if data.get("apiVersion") != API_VERSION:
        raise InvalidInput(
            f"{where}: apiVersion: must be {API_VERSION!r}, got {data.get('apiVersion')!r}"
        )
    if "kind" not in data:
        raise InvalidInput(
            f"{where}: kind: missing (known kinds: {', '.join(k.kind for k in KINDS)})"
        )
    try:
        info = by_kind(str(data["kind"]))
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc}") from exc
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise InvalidInput(f"{where}: metadata.name: missing")
    dropped = () if keep_version else _SERVER_SET
    obj = {
        "apiVersion": API_VERSION,
        "kind": info.kind,
        "metadata": {k: v for k, v in metadata.items() if k not in dropped},
        "spec": data.get("spec") or {},
    }
    return Manifest(info, obj, where)


def to_manifests(documents: list[Document], *, keep_version: bool = False) -> list[Manifest]:
    """Check each document's envelope and expand ``kind: List``; order by dependency.

    Server-set metadata (uid, resourceVersion, timestamps) and status are dropped unless
    ``keep_version``: apply is declarative, last writer wins.

    Raises:
        InvalidInput: naming the file and line of the first bad document.
    """
    manifests: list[Manifest] = []
    for doc in documents:
        data = doc.data
        if isinstance(data, dict) and data.get("kind") == "List":
            items = data.get("items") or []
            manifests += [
                _manifest(item, f"{doc.where} (items[{i}])", keep_version=keep_version)
                for i, item in enumerate(items)
            ]
        else:
            manifests.append(_manifest(data, doc.where, keep_version=keep_version))
    seen: dict[str, str] = {}
    for m in manifests:
        if m.ref in seen:
            raise InvalidInput(f"{m.where}: {m.ref} is also defined at {seen[m.ref]}")
        seen[m.ref] = m.where
    return sorted(manifests, key=lambda m: m.info.apply_order)
