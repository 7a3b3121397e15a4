"""Secret values are encrypted at rest, with the key file or MCPD_SECRET_KEY."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from mcpctl.errors import InvalidInput
from mcpctl.mcpd.services.sealing import SecretBox, decode_key
from mcpctl.mcpd.settings import Settings
from tests.conftest import Database
from tests.mcpd.manifests import must_put, secret
from tests.mcpd.running import raw_rows, running

pytestmark = pytest.mark.anyio

MARKER = "plaintext-marker-7f3a9c"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def with_key(settings: Settings, key: str) -> Settings:
    return settings.model_copy(update={"secret_key": SecretStr(key)})


async def stored_secret(settings: Settings, name: str) -> tuple[str, str, bytes]:
    (row,) = await raw_rows(
        settings,
        "SELECT CAST(spec AS TEXT), CAST(status AS TEXT), sealed FROM objects "
        "WHERE kind = 'Secret' AND name = :name",
        name=name,
    )
    return str(row[0]), str(row[1]), bytes(row[2])


async def test_values_are_encrypted_in_the_database(
    api: httpx.AsyncClient, settings: Settings, database: Database
) -> None:
    await must_put(api, secret("db", {"PASSWORD": MARKER}))

    spec, status, sealed = await stored_secret(settings, "db")

    assert MARKER not in spec
    assert MARKER not in status
    assert MARKER.encode() not in sealed
    assert len(sealed) > len(MARKER)
    everything = await raw_rows(settings, "SELECT * FROM objects")
    assert MARKER not in repr(everything)
    if database.engine == "sqlite":
        files = [p for p in Path(database.url.removeprefix("sqlite:///")).parent.glob("mcpd.db*")]
        assert files
        for path in files:
            assert MARKER.encode() not in path.read_bytes(), path


async def test_the_same_value_seals_differently_each_time(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    await must_put(api, secret("a", {"K": MARKER}), secret("b", {"K": MARKER}))

    _, _, sealed_a = await stored_secret(settings, "a")
    _, _, sealed_b = await stored_secret(settings, "b")

    assert sealed_a != sealed_b


async def test_key_file_is_created_with_mode_0600(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    key_file = settings.data_dir / "secret.key"

    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(decode_key(key_file.read_text())) == 32
    assert settings.data_dir.stat().st_mode & 0o077 == 0


async def test_the_key_file_survives_a_restart_and_still_opens_values(
    settings: Settings,
) -> None:
    async with running(settings) as api:
        await must_put(api, secret("db", {"PASSWORD": MARKER}))
    key_before = (settings.data_dir / "secret.key").read_text()

    async with running(settings) as api:
        shown = await api.get("/api/v1/secrets/db", params={"showValues": "true"})

    assert (settings.data_dir / "secret.key").read_text() == key_before
    assert shown.json()["spec"]["data"] == {"PASSWORD": MARKER}


async def test_secret_key_setting_is_used_instead_of_the_file(settings: Settings) -> None:
    key = new_key()

    async with running(with_key(settings, key)) as api:
        await must_put(api, secret("db", {"PASSWORD": MARKER}))

    assert not (settings.data_dir / "secret.key").exists()
    _, _, sealed = await stored_secret(settings, "db")
    opened = SecretBox(decode_key(key)).open(sealed, b"mcpctl/v1 Secret db")
    assert json.loads(opened) == {"PASSWORD": MARKER}


async def test_a_wrong_key_stops_start_up_before_anything_is_served(settings: Settings) -> None:
    async with running(with_key(settings, new_key())) as api:
        await must_put(api, secret("db", {"PASSWORD": MARKER}))

    with pytest.raises(InvalidInput, match="MCPD_SECRET_KEY") as caught:
        async with running(with_key(settings, new_key())):
            pass

    assert "secret/db" in str(caught.value)
    assert MARKER not in str(caught.value)


async def test_a_malformed_secret_key_setting_stops_start_up(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="MCPD_SECRET_KEY"):
        async with running(with_key(settings, "too-short")):
            pass


def test_mcpd_secret_key_and_admin_password_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_key()
    monkeypatch.setenv("MCPD_SECRET_KEY", key)
    monkeypatch.setenv("MCPD_ADMIN_PASSWORD", "pa55word")

    read = Settings()

    assert read.secret_key is not None
    assert read.secret_key.get_secret_value() == key
    assert read.admin_password is not None
    assert read.admin_password.get_secret_value() == "pa55word"
    assert key not in repr(read)
