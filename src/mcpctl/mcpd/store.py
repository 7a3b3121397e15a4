"""Opening the store at start: database, migrations, and the key that opens its secrets."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from mcpctl.errors import AppError, InvalidInput
from mcpctl.mcpd.db.engine import create_engine
from mcpctl.mcpd.db.migrate import upgrade_to_head
from mcpctl.mcpd.db.uow import UnitOfWorkFactory
from mcpctl.mcpd.services.sealing import SecretBox, decode_key, load_or_create_key
from mcpctl.mcpd.services.secrets import SecretBehaviour
from mcpctl.mcpd.settings import Settings


def secret_box(settings: Settings) -> SecretBox:
    if settings.secret_key is not None:
        return SecretBox(decode_key(settings.secret_key.get_secret_value()))
    return SecretBox(load_or_create_key(settings.data_dir))


async def _check_key(engine: AsyncEngine, box: SecretBox) -> None:
    async with UnitOfWorkFactory(engine).read() as uow:
        row = await uow.objects.first_sealed("Secret")
    if row is None:
        return
    try:
        SecretBehaviour(box).plaintext(row)
    except AppError as exc:
        raise InvalidInput(
            "the secret key (MCPD_SECRET_KEY, else <data dir>/secret.key) is not the one the "
            f"stored secrets were written with (secret/{row.name} does not open)"
        ) from exc


async def open_store(settings: Settings) -> tuple[AsyncEngine, SecretBox]:
    """Open and migrate the database and load the secret key, proving it opens stored secrets.

    Raises:
        InvalidInput: for a malformed or wrong key. SQLAlchemyError, OSError: database trouble.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = create_engine(settings.effective_database_url(), schema=settings.database_schema)
    try:
        await upgrade_to_head(engine)
        box = secret_box(settings)
        await _check_key(engine, box)
    except BaseException:
        await engine.dispose()
        raise
    return engine, box
