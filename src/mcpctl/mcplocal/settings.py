"""mcplocal settings, read from flags, ``MCPLOCAL_*`` environment variables and the CLI config
by the entry point only (``cli.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcpctl.client.config import DEFAULT_SERVER

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
RELAY_URL_TEMPLATE = "{mcpd}/api/v1/servers/{server}/mcp"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCPLOCAL_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Loopback address to bind.")
    port: int = Field(default=7461, ge=0, le=65535)
    mcpd_url: str = Field(
        default=DEFAULT_SERVER, description="mcpd; the entry point takes it from the CLI config."
    )
    token: SecretStr | None = Field(
        default=None, description="The user's mcpd token; the entry point takes it from the config."
    )
    upstream_url_template: str = Field(
        default=RELAY_URL_TEMPLATE,
        description="Where a project's server is reached: {mcpd} and {server} are filled in.",
    )
    connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds for an upstream to connect and list its tools."
    )
    list_wait: float = Field(
        default=5.0,
        ge=0,
        description="Seconds a list request waits for upstreams still connecting; the ones "
        "not ready by then are left out and appear later with list_changed.",
    )
    request_timeout: float = Field(
        default=60.0, gt=0, description="Seconds for prompts/get, resources/read and completion."
    )
    call_timeout: float | None = Field(
        default=None, gt=0, description="Seconds for tools/call; unset: until the client cancels."
    )
    reconnect_max_delay: float = Field(
        default=5.0, gt=0, description="Longest wait between reconnection attempts, in seconds."
    )
    project_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        le=60,
        description="How long one long-poll of a served project waits at mcpd for a change, "
        "seconds (mcpd answers at once when the project changes, on any replica).",
    )
    project_poll_interval: float = Field(
        default=0.5,
        gt=0,
        description="Pause before following a served project again after an error (or when "
        "mcpd answered without waiting), seconds.",
    )
    answers: Literal["json", "sse"] = Field(
        default="json",
        description="How requests of clients that accept both are answered: json (one body; "
        "an SSE stream only when progress or a server's request must come first) or sse (an "
        "SSE stream always, as the MCP SDK's servers do).",
    )
    capture_messages: int = Field(
        default=1000, ge=1, description="Messages kept per session for the capture endpoint."
    )
    capture_sessions: int = Field(
        default=200, ge=1, description="Sessions kept by the capture endpoint (oldest dropped)."
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"

    def allowed_hosts(self) -> list[str]:
        """Host header values accepted (DNS-rebinding protection): loopback with our port."""
        return [f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"]

    def allowed_origins(self) -> list[str]:
        return [f"http://{host}" for host in self.allowed_hosts()]
