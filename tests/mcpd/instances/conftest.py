"""Supervisor tests run mcpd in process on SQLite only (the API tests in tests/mcpd cover both
engines), with short limits so restarts, idle stops and crash loops happen quickly."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpctl.mcpd.settings import Settings
from tests.conftest import Database


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'mcpd.db'}")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "instance_backoff_initial_seconds": 0.01,
            "instance_backoff_max_seconds": 0.05,
            "instance_crash_loop_restarts": 3,
            "instance_stop_grace_seconds": 2.0,
        }
    )
