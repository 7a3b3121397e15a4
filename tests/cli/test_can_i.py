"""`mcpctl auth can-i VERB KIND [NAME]`: yes (exit 0) or no (exit 1), for the token's user."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from mcpctl.mcpd.db.engine import create_engine
from mcpctl.mcpd.db.tables import TokenRow, UserRow, utcnow
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.services.auth import hash_token
from mcpctl.mcpd.settings import Settings
from tests.cli.conftest import Mcpctl
from tests.cli.samples import document, ok, write
from tests.conftest import LiveMcpd


def add_user(settings: Settings, name: str) -> str:
    """A user with no permissions and one token, written straight to the database."""
    token = f"mcpctl_test_{uuid.uuid4().hex}"

    async def insert() -> None:
        engine = create_engine(settings.effective_database_url(), schema=settings.database_schema)
        try:
            async with UnitOfWorkFactory(engine).write() as uow:
                user = await uow.users.add(
                    UserRow(
                        name=name,
                        display_name=name,
                        is_admin=False,
                        disabled=False,
                        password_hash=None,
                        created_at=utcnow(),
                    )
                )
                await uow.users.add_token(
                    TokenRow(
                        id=str(uuid.uuid4()),
                        user_id=user.id,
                        token_hash=hash_token(token),
                        description="test",
                        created_at=utcnow(),
                        expires_at=None,
                    )
                )
                await uow.commit()
        finally:
            await engine.dispose()

    asyncio.run(insert())
    return token


def test_can_i_prints_yes_or_no_and_exits_0_or_1(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd, tmp_path: Path
) -> None:
    alice = {"MCPCTL_TOKEN": add_user(live_mcpd.settings, "alice")}
    binding = {"role": "view", "resource": "servers", "name": "web"}
    rbac = document("RbacDefinition", "alice", {"subjects": ["user:alice"], "bindings": [binding]})
    ok(mcpctl("apply", "-f", str(write(tmp_path, "rbac.yaml", rbac))))

    admin = mcpctl("auth", "can-i", "run", "backup")
    named = mcpctl("auth", "can-i", "view", "server", "web", env=alice)
    other = mcpctl("auth", "can-i", "view", "srv", "db", env=alice)
    backup = mcpctl("auth", "can-i", "run", "backup", env=alice)
    unknown = mcpctl("auth", "can-i", "view", "widgets", env=alice)

    assert (admin.exit_code, admin.stdout) == (0, "yes\n")
    assert (named.exit_code, named.stdout) == (0, "yes\n")
    assert (other.exit_code, other.stdout) == (1, "no\n")
    assert (backup.exit_code, backup.stdout) == (1, "no\n")
    assert unknown.exit_code == 3
    assert "unknown kind 'widgets'" in unknown.stderr
