"""mcpd settings, read from flags and ``MCPD_*`` environment variables by the entry point only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcpctl.http11 import client_context
from mcpctl.mcpd.db.engine import sqlite_url


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mcpctl"


def default_templates_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "templates"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCPD_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 7460
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, description="postgresql://... or sqlite:///...; default: SQLite in data_dir."
    )
    database_schema: str | None = Field(default=None, description="PostgreSQL schema to use.")
    secret_key: SecretStr | None = Field(
        default=None, description="32 bytes, base64; default: <data_dir>/secret.key (created)."
    )
    admin_password: SecretStr | None = None
    templates_dir: Path = Field(default_factory=default_templates_dir)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    audit_retention_days: int = Field(
        default=90, ge=0, description="Delete audit events older than this; 0 keeps them forever."
    )

    token_lifetime_days: int = Field(
        default=30, ge=1, description="Lifetime of the tokens `mcpctl login` gets."
    )
    login_max_failures_per_user: int = Field(
        default=5, ge=1, description="Failed logins per user name in the window, then 429."
    )
    login_max_failures_per_client: int = Field(
        default=20, ge=1, description="Failed logins per client address in the window, then 429."
    )
    login_failure_window_seconds: int = Field(
        default=300, ge=1, description="The sliding window of the login limits, in seconds."
    )
    rbac_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long compiled permissions are reused before RBAC objects are reread "
        "(writes through this mcpd take effect at once; through another replica, within this).",
    )

    # MCP server instances (docs/instances.md).
    instance_idle_seconds: float = Field(
        default=600.0, ge=0, description="Stop an instance unused this long; 0 never stops it."
    )
    max_instances: int = Field(
        default=50, ge=1, description="Most process and docker instances running at once."
    )
    instance_start_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long a new instance may take to answer initialize."
    )
    instance_stop_grace_seconds: float = Field(
        default=5.0, gt=0, description="How long a stopping instance gets before it is killed."
    )
    instance_backoff_initial_seconds: float = Field(
        default=0.5, ge=0, description="Delay before the first restart after a crash (doubles)."
    )
    instance_backoff_max_seconds: float = Field(
        default=30.0, ge=0, description="Longest delay between restarts."
    )
    instance_crash_loop_restarts: int = Field(
        default=5, ge=1, description="Crashes within the window that mean CrashLoop."
    )
    instance_crash_loop_window_seconds: float = Field(
        default=300.0, gt=0, description="The window in which crashes are counted."
    )
    instance_log_lines: int = Field(
        default=1000, ge=1, description="Lines of stderr and events kept in memory per server."
    )
    instance_log_file_bytes: int = Field(
        default=1_048_576, ge=1024, description="Size at which a server's log file rotates."
    )
    instance_log_file_backups: int = Field(
        default=3, ge=0, description="Rotated log files kept per server."
    )
    docker_host: str | None = Field(
        default=None,
        description="Docker (or Podman) API for runtime docker; default: DOCKER_HOST, "
        "then the engine's default socket.",
    )

    # LLM pools (docs/llms.md). Cooldown defaults follow LiteLLM's router.
    llm_allowed_fails: int = Field(
        default=3, ge=1, description="Failures of one Llm within the window that cool it down."
    )
    llm_failure_window_seconds: float = Field(
        default=60.0, gt=0, description="The sliding window in which an Llm's failures count."
    )
    llm_cooldown_seconds: float = Field(
        default=5.0, ge=0, description="How long a failing Llm is left out of its pool."
    )
    llm_max_cooldown_seconds: float = Field(
        default=300.0, ge=0, description="Longest cooldown a 429's Retry-After may ask for."
    )
    llm_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long to wait for a connection to an Llm."
    )
    llm_read_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long to wait between two pieces of an answer (a whole non-streamed one).",
    )
    llm_ca_file: Path | None = Field(
        default=None,
        description="A PEM file of CA certificates to trust for https Llm urls, besides the "
        "system's.",
    )
    llm_catalog_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long the dispatcher reuses its view of the Llms (writes through this "
        "mcpd take effect at once; through another replica, within this).",
    )

    # Agent chat (docs/agents.md, "Chat").
    chat_max_tool_rounds: int = Field(
        default=8,
        ge=0,
        description="Rounds of tool calls an agent may make for one user message; then it must "
        "answer.",
    )
    chat_tool_timeout_seconds: float = Field(
        default=60.0, gt=0, description="How long one tool call of an agent may take."
    )

    @field_validator("llm_ca_file")
    @classmethod
    def _ca_file_loads(cls, value: Path | None) -> Path | None:
        if value is not None:
            client_context(value)  # ValueError naming the file and why
        return value

    def effective_database_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir / "mcpd.db")
