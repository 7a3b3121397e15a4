"""The template catalog: YAML files upserted at every start of mcpd."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from mcpctl.domain.caller import SYSTEM
from mcpctl.errors import AppError, InUse
from mcpctl.mcpd.services.objects import ObjectService
from mcpctl.resources.envelope import Resource
from mcpctl.resources.kinds import lookup
from mcpctl.resources.templates import TemplateSpec
from mcpctl.resources.yamlcodec import load_documents

log = logging.getLogger(__name__)

CATALOG_LABEL = "mcpctl.io/source"
CATALOG_VALUE = "catalog"


@dataclass
class SeedReport:
    applied: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_catalog(directory: Path) -> tuple[list[Resource[TemplateSpec]], list[str]]:
    """Every Template in ``directory/*.yaml`` (and ``*.yml``), and an error line for each bad document."""
    templates: list[Resource[TemplateSpec]] = []
    errors: list[str] = []
    for path in sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml")):
        try:
            documents = load_documents(path.read_text(), path.name)
        except AppError as exc:
            errors.append(str(exc))
            continue
        for doc in documents:
            try:
                if not isinstance(doc.data, dict) or doc.data.get("kind") != "Template":
                    raise ValueError("only kind Template belongs in the catalog")
                template = Resource[TemplateSpec].model_validate(doc.data)
            except ValidationError as exc:
                errors.append(f"{doc.where}: {_one_line(exc)}")
                continue
            except ValueError as exc:
                errors.append(f"{doc.where}: {exc}")
                continue
            template.metadata.labels[CATALOG_LABEL] = CATALOG_VALUE
            templates.append(template)
    return templates, errors


def _one_line(exc: ValidationError) -> str:
    """The first validation error as ``field.path[0]: message`` (and how many more)."""
    errors = exc.errors()
    path = ""
    for part in errors[0]["loc"]:
        path += f"[{part}]" if isinstance(part, int) else ("." if path else "") + str(part)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path or 'document'}: {errors[0]['msg']}{more}"


async def seed_templates(objects: ObjectService, directory: Path) -> SeedReport:
    """Upsert the catalog; drop catalog templates whose file is gone unless a server uses them."""
    info = lookup("templates")
    report = SeedReport()
    templates, report.errors = read_catalog(directory) if directory.is_dir() else ([], [])  # noqa: ASYNC240 (start-up only)
    for template in templates:
        name = template.metadata.name
        try:
            report.applied[name], _ = await objects.apply(SYSTEM, info, name, template)
        except AppError as exc:
            report.errors.append(f"template/{name}: {exc}")
    wanted = {t.metadata.name for t in templates}
    page = await objects.list_page(SYSTEM, info, selector=f"{CATALOG_LABEL}={CATALOG_VALUE}")
    for obj in page.items:
        name = obj["metadata"]["name"]
        if name in wanted:
            continue
        try:
            await objects.delete(SYSTEM, info, name)
            report.removed.append(name)
        except InUse as exc:
            report.kept.append(name)
            log.warning("catalog template %s is gone from %s but kept: %s", name, directory, exc)
    for error in report.errors:
        log.error("template catalog: %s", error)
    return report
