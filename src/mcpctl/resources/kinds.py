"""The kinds registry: one entry per kind drives routes, validation, CLI columns and YAML.

This module stays import-light (no pydantic) so the CLI starts fast: each kind names the module
that holds its spec model (``spec_model``) and its ``references(spec)`` function (or, for a kind
whose references depend on the object's own name, ``references_by_name(name, spec)``), imported
on first use. Adding a kind means one spec module and one ``KindInfo`` here.

Names follow one rule (``domain/names.py``), except for a kind ``scoped`` by another: its
objects are named ``OWNER.NAME`` (a Personality ``reviewer.concise`` of the agent
``reviewer``), so that NAME is unique per owner while ``(kind, name)`` stays the store's key.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mcpctl.domain.names import MAX_NAME_LENGTH, check_name, is_valid_name
from mcpctl.errors import InvalidInput

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mcpctl.resources.references import Reference


@dataclass(frozen=True)
class Column:
    header: str
    path: str
    wide_only: bool = False
    default: object = None  # shown when the field is absent (stored specs leave defaults out)


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    module: str
    apply_order: int
    columns: tuple[Column, ...]
    # Whether `get all` lists it; access-control kinds are left out, as kubectl leaves RBAC out.
    in_all: bool = True
    # The spec field naming the owner in OWNER.NAME, for kinds whose names are unique per owner.
    scope: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.plural, self.singular, self.kind.lower(), *self.short_names)

    @cached_property
    def _module(self) -> Any:
        return importlib.import_module(self.module)

    @property
    def spec_model(self) -> type[BaseModel]:
        model: type[BaseModel] = self._module.spec_model
        return model

    def references_of(self, name: str, spec: Any) -> list[Reference]:
        """What the object ``name`` with this (validated) spec refers to."""
        by_name: Callable[[str, Any], list[Reference]] | None = getattr(
            self._module, "references_by_name", None
        )
        if by_name is not None:
            return by_name(name, spec)
        refs: Callable[[Any], list[Reference]] = self._module.references
        return refs(spec)

    def check_name(self, name: str, field: str = "metadata.name") -> str:
        """Return ``name`` if it is a valid name for this kind.

        Raises:
            InvalidInput: naming the field and the rule.
        """
        if self.scope is None:
            return check_name(name, field)
        owner, dot, short = name.partition(".")
        valid = dot and is_valid_name(owner) and is_valid_name(short)
        if not valid or len(name) > MAX_NAME_LENGTH:
            rule = (
                f"{self.scope.upper()}.NAME: the {self.scope}'s name, a dot, and a name of "
                "lowercase letters, digits and '-' (starting and ending with a letter or "
                f"digit); at most {MAX_NAME_LENGTH} characters in all"
            )
            raise InvalidInput(
                f"{field}: invalid name {name!r}: a {self.singular} is named {rule}",
                details={"errors": [{"path": field, "message": f"must be {rule}"}]},
            )
        return name


KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        kind="Secret",
        plural="secrets",
        singular="secret",
        short_names=("sec",),
        module="mcpctl.resources.secrets",
        apply_order=10,
        columns=(Column("KEYS", "status.keys"),),
    ),
    KindInfo(
        kind="Template",
        plural="templates",
        singular="template",
        short_names=("tpl",),
        module="mcpctl.resources.templates",
        apply_order=20,
        columns=(
            Column("RUNTIME", "spec.runtime", default="process"),
            Column("TRANSPORT", "spec.transport", default="stdio"),
            Column("COMMAND", "spec.command", wide_only=True),
            Column("IMAGE", "spec.image", wide_only=True),
            Column("DESCRIPTION", "spec.description", wide_only=True),
        ),
    ),
    KindInfo(
        kind="Server",
        plural="servers",
        singular="server",
        short_names=("srv",),
        module="mcpctl.resources.servers",
        apply_order=30,
        columns=(
            Column("RUNTIME", "status.effective.runtime"),
            Column("TRANSPORT", "status.effective.transport"),
            Column("TEMPLATE", "spec.fromTemplate"),
            Column("COMMAND", "status.effective.command", wide_only=True),
            Column("IMAGE", "status.effective.image", wide_only=True),
            Column("URL", "status.effective.url", wide_only=True),
        ),
    ),
    KindInfo(
        kind="Llm",
        plural="llms",
        singular="llm",
        short_names=(),
        module="mcpctl.resources.llms",
        apply_order=35,
        columns=(
            Column("PROVIDER", "spec.provider"),
            Column("MODEL", "spec.model"),
            Column("POOL", "status.poolKey"),
            Column("STATUS", "spec.status", default="active"),
            Column("TIER", "spec.tier", wide_only=True),
            Column("URL", "spec.url", wide_only=True),
        ),
    ),
    KindInfo(
        kind="Project",
        plural="projects",
        singular="project",
        short_names=("proj",),
        module="mcpctl.resources.projects",
        apply_order=40,
        columns=(
            Column("SERVERS", "spec.servers"),
            Column("GATED", "spec.gated", default=False),
            Column("PROXYMODEL", "spec.proxyModel", wide_only=True, default="default"),
            Column("DESCRIPTION", "spec.description", wide_only=True),
        ),
    ),
    KindInfo(
        kind="Agent",
        plural="agents",
        singular="agent",
        short_names=(),
        module="mcpctl.resources.agents",
        # After Llm and Project (it names them), before Prompt and Personality (they name it);
        # its defaultPersonality is a deferrable reference (see references.py).
        apply_order=45,
        columns=(
            Column("LLM", "spec.llm"),
            Column("PROJECT", "spec.project"),
            Column("PERSONALITY", "spec.defaultPersonality"),
        ),
    ),
    KindInfo(
        kind="Prompt",
        plural="prompts",
        singular="prompt",
        short_names=("pr",),
        module="mcpctl.resources.prompts",
        apply_order=50,
        columns=(
            Column("PROJECT", "spec.project"),
            Column("AGENT", "spec.agent"),
            Column("PRIORITY", "spec.priority", default=5),
            Column("TAGS", "spec.tags", wide_only=True),
        ),
    ),
    KindInfo(
        kind="Personality",
        plural="personalities",
        singular="personality",
        short_names=(),
        module="mcpctl.resources.personalities",
        apply_order=52,
        columns=(
            Column("AGENT", "spec.agent"),
            Column("PRIORITY", "spec.priority", default=5),
            Column("PROMPTS", "spec.prompts[].name"),
            Column("DESCRIPTION", "spec.description", wide_only=True),
        ),
        scope="agent",
    ),
    KindInfo(
        kind="User",
        plural="users",
        singular="user",
        short_names=("usr",),
        module="mcpctl.resources.users",
        apply_order=55,
        columns=(
            Column("DISPLAY NAME", "spec.displayName"),
            Column("DISABLED", "spec.disabled", default=False),
        ),
        in_all=False,
    ),
    KindInfo(
        kind="Group",
        plural="groups",
        singular="group",
        short_names=("grp",),
        module="mcpctl.resources.groups",
        apply_order=60,
        columns=(
            Column("MEMBERS", "spec.members"),
            Column("DESCRIPTION", "spec.description", wide_only=True),
        ),
        in_all=False,
    ),
    KindInfo(
        kind="RbacDefinition",
        plural="rbacdefinitions",
        singular="rbacdefinition",
        short_names=("rbac",),
        module="mcpctl.resources.rbacdefinitions",
        apply_order=70,
        columns=(
            Column("SUBJECTS", "spec.subjects"),
            Column("DESCRIPTION", "spec.description", wide_only=True),
        ),
        in_all=False,
    ),
)


def known_kinds_text() -> str:
    return ", ".join(k.plural for k in KINDS)


def lookup(word: str) -> KindInfo:
    """Find a kind by plural, singular, short name or Kind (any case).

    Raises:
        InvalidInput: listing the known kinds.
    """
    needle = word.strip().lower()
    for info in KINDS:
        if needle in info.names:
            return info
    raise InvalidInput(f"unknown kind {word!r}; known kinds: {known_kinds_text()}")


def by_kind(kind: str) -> KindInfo:
    """The KindInfo whose Kind is exactly ``kind``.

    Raises:
        InvalidInput: for an unknown Kind, listing the known ones.
    """
    for info in KINDS:
        if info.kind == kind:
            return info
    raise InvalidInput(
        f"kind: unknown kind {kind!r}; known kinds: {', '.join(k.kind for k in KINDS)}"
    )
