"""Prototypes of proposed fixes in src, to measure them side by side before anyone writes them.

Not used by default. Two ways in:

``MCPCTL_BENCH_PATCHES=gc-freeze,token-cache python -m bench ...``
    every mcpd of the run starts through :func:`serve_patched`, which applies the named
    monkeypatches and then runs the real ``mcpd`` entry point:

    - ``gc-freeze``: after start-up (templates seeded), ``gc.collect(); gc.freeze()``, so the
      collector's full passes stop re-scanning the long-lived start-up heap on every request.
    - ``token-cache``: ``AuthService.authenticate`` remembers token -> caller for 10 s, so a
      request does not open its own read transaction just to authenticate.

``python -m bench.prototypes bulk [sqlite|postgres]``
    in-process: 1,000 servers applied the way mcpd does it now (one ``ObjectService.apply``
    each) next to a set-based prototype of a bulk apply (one transaction, one SELECT of the
    existing names, one multi-row INSERT of objects and one of labels).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

PATCHES = ("gc-freeze", "token-cache")


def requested_patches() -> list[str]:
    names = [p for p in os.environ.get("MCPCTL_BENCH_PATCHES", "").split(",") if p]
    unknown = [p for p in names if p not in PATCHES]
    if unknown:
        raise SystemExit(f"MCPCTL_BENCH_PATCHES: unknown {unknown[0]!r} (known: {PATCHES})")
    return names


def _patch_gc_freeze() -> None:
    from mcpctl.mcpd.services import catalog

    original = catalog.seed_templates

    async def seed_then_freeze(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)  # the last step of the lifespan's start-up
        gc.collect()
        gc.freeze()
        return result

    catalog.seed_templates = seed_then_freeze


def _patch_token_cache() -> None:
    from mcpctl.mcpd.services.auth import AuthService

    original = AuthService.authenticate
    cache: dict[str | None, tuple[Any, float]] = {}

    async def authenticate(self: AuthService, token: str | None) -> Any:
        hit = cache.get(token)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        caller = await original(self, token)
        cache[token] = (caller, time.monotonic() + 10)
        return caller

    setattr(AuthService, "authenticate", authenticate)  # noqa: B010 (mypy: method-assign)


def serve_patched(argv: list[str]) -> None:
    """Apply the requested patches, then run ``mcpd`` with ``argv`` (before app import)."""
    for name in requested_patches():
        {"gc-freeze": _patch_gc_freeze, "token-cache": _patch_token_cache}[name]()
    from mcpctl.mcpd.cli import main

    sys.argv = ["mcpd", *argv]
    main()


# -- bulk apply, in process -------------------------------------------------------------------


async def _bulk(database: str, schema: str | None, count: int) -> None:
    import sqlalchemy as sa
    from asgi_lifespan import LifespanManager

    from bench.harness import POSTGRES_URL, server_name, server_object
    from mcpctl.domain.caller import SYSTEM
    from mcpctl.domain.templating import effective_server
    from mcpctl.mcpd.app import create_app
    from mcpctl.mcpd.db.tables import ObjectLabelRow, ObjectRow, utcnow
    from mcpctl.mcpd.services.behaviours import spec_json
    from mcpctl.mcpd.settings import Settings
    from mcpctl.resources.envelope import Resource
    from mcpctl.resources.kinds import by_kind
    from mcpctl.resources.servers import ServerSpec, runnable_problem

    with tempfile.TemporaryDirectory(prefix="mcpctl-bench-bulk-") as tmp:
        (Path(tmp) / "templates").mkdir()
        settings = Settings(
            data_dir=Path(tmp) / "data",
            templates_dir=Path(tmp) / "templates",
            database_url=None if database == "sqlite" else POSTGRES_URL,
            database_schema=schema,
        )
        app = create_app(settings)
        async with LifespanManager(app):
            objects = app.state.mcpd.objects
            info = by_kind("Server")
            model = Resource[ServerSpec]
            docs = [server_object(server_name(i)) for i in range(2 * count)]

            for outcome, indices in (("created", range(count)), ("unchanged", range(count))):
                start = time.perf_counter()
                for i in indices:
                    body = model.model_validate(docs[i])
                    await objects.apply(SYSTEM, info, server_name(i), body)
                took = time.perf_counter() - start
                print(f"{database}: {count} x ObjectService.apply, all {outcome}: {took:.3f} s")

            for outcome in ("created", "unchanged"):
                start = time.perf_counter()
                bodies = [model.model_validate(d) for d in docs[count:]]
                async with objects.uows.write() as uow:
                    names = [b.metadata.name for b in bodies]
                    stmt = sa.select(ObjectRow).where(
                        ObjectRow.kind == "Server", ObjectRow.name.in_(names)
                    )
                    existing = {r.name: r for r in (await uow.session.execute(stmt)).scalars()}
                    new: list[dict[str, Any]] = []
                    for b in bodies:
                        if runnable_problem(effective_server(b.spec, None)):
                            raise AssertionError(b.metadata.name)
                        spec = spec_json(b.spec)
                        old = existing.get(b.metadata.name)
                        if old is not None and old.spec == spec:
                            continue
                        now = utcnow()
                        new.append(
                            {
                                "uid": str(uuid.uuid4()),
                                "kind": "Server",
                                "name": b.metadata.name,
                                "spec": spec,
                                "status": {},
                                "sealed": None,
                                "resource_version": 1,
                                "created_at": now,
                                "updated_at": now,
                            }
                        )
                    if new:
                        insert = sa.insert(ObjectRow).returning(ObjectRow.id, ObjectRow.name)
                        ids = {n: i for i, n in (await uow.session.execute(insert, new)).all()}
                        labels = [
                            {"object_id": ids[b.metadata.name], "key": k, "value": v}
                            for b in bodies
                            for k, v in b.metadata.labels.items()
                        ]
                        await uow.session.execute(sa.insert(ObjectLabelRow), labels)
                    await uow.commit()
                took = time.perf_counter() - start
                print(f"{database}: set-based bulk prototype, {count} all {outcome}: {took:.3f} s")


def bulk(database: str, count: int = 1000) -> None:
    from bench.harness import postgres_schema

    if database == "sqlite":
        asyncio.run(_bulk(database, None, count))
    else:
        with postgres_schema() as schema:
            asyncio.run(_bulk(database, schema, count))


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve-patched"]:
        serve_patched(sys.argv[2:])
    elif sys.argv[1:2] == ["bulk"]:
        for db in sys.argv[2:] or ["sqlite", "postgres"]:
            bulk(db)
    else:
        raise SystemExit(__doc__)
